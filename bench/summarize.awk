# Summarizes `go test -bench` output run with -count N: for every benchmark
# and unit, the median and the range [min..max] of the N runs.
# Usage: awk -f bench/summarize.awk bench.txt
/^Benchmark/ {
	name = $1
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	for (i = 3; i < NF; i += 2) {
		key = name SUBSEP $(i + 1)
		if (!(key in cnt)) { units[name] = units[name] " " $(i + 1) }
		vals[key, ++cnt[key]] = $i
	}
}
function median(key, k,    a, i, j, t) {
	for (i = 1; i <= k; i++) a[i] = vals[key, i] + 0
	for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	lo = a[1]; hi = a[k]
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	for (b = 1; b <= n; b++) {
		name = order[b]
		printf "%s\n", name
		m = split(units[name], us, " ")
		for (u = 1; u <= m; u++) {
			key = name SUBSEP us[u]
			med = median(key, cnt[key])
			printf "    %-18s %12.6g   [%.6g .. %.6g]  n=%d\n", us[u], med, lo, hi, cnt[key]
		}
	}
}
