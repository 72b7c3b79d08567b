package session

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis deployments, the values of RedisConfig.Mode.
const (
	// RedisSingle is one server (or a proxy in front of several) named by a URL.
	RedisSingle = ""
	// RedisCluster is a Redis Cluster, reached through any of its nodes.
	RedisCluster = "cluster"
	// RedisSentinel is a master watched by Redis Sentinel, which tells
	// the client where the master is, also after a failover.
	RedisSentinel = "sentinel"
)

// RedisConfig configures a Redis store. Fields set here replace what the
// URL says (credentials, database, TLS).
type RedisConfig struct {
	// Mode is RedisSingle (default), RedisCluster or RedisSentinel.
	Mode string
	// URL names the servers, with go-redis's URL syntax:
	//   - single: redis://[[user]:password@]host:port/db, or rediss:// for TLS;
	//     required.
	//   - cluster: redis://[user:password@]host:port?addr=host2:port2&addr=...,
	//     any nodes of the cluster (go-redis ParseClusterURL); or use Addrs.
	//   - sentinel: redis://[user:password@]host:port/db?master_name=m&addr=host2:port2&addr=...,
	//     where host:port and each addr are SENTINELS and the user:password
	//     in the URL are the SENTINELS' credentials, not the master's (go-redis
	//     ParseFailoverURL); the master's go in Username and Password (or the
	//     URL parameters username= and password=). Or use MasterName and Addrs.
	URL string
	// Addrs are host:port of cluster nodes (cluster) or of sentinels
	// (sentinel), instead of a URL.
	Addrs []string
	// MasterName is the name the sentinels monitor the master under
	// (sentinel, with Addrs; a URL gives it as master_name=).
	MasterName string
	// Username and Password authenticate to the data nodes: the server, the
	// cluster's nodes, or the master and replicas behind sentinels.
	Username, Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels.
	SentinelUsername, SentinelPassword string
	// DB selects the database (single and sentinel); nil keeps the URL's,
	// else 0. A cluster has only database 0.
	DB *int
	// TLS connects with TLS, as a rediss:// URL does.
	TLS bool
	// TLSCAFile is a PEM file of the certificate authorities trusted for
	// the servers' certificates, instead of the system's; needs TLS.
	TLSCAFile string
	// TLSServerName is the name the servers' certificates must carry;
	// default: the host of each address dialled. Needs TLS.
	TLSServerName string
	// PoolSize is the most connections kept open (per node in a cluster);
	// 0 means go-redis's default.
	PoolSize int
	// KeyPrefix is prepended to every key and lock name, e.g. "wxauth:". It
	// may not contain '{' or '}', which Redis Cluster reads as a hash tag.
	KeyPrefix string
	// DialTimeout bounds connecting; 0 means 2s.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for a reply; 0 means 1s.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending a command; 0 means 1s.
	WriteTimeout time.Duration
}

// Default timeouts: a request that needs the store should fail fast rather
// than hang when Redis is unreachable.
const (
	defaultRedisDialTimeout  = 2 * time.Second
	defaultRedisReadTimeout  = time.Second
	defaultRedisWriteTimeout = time.Second
)

// Validate checks cfg as NewRedis does (reading the TLS CA file too),
// without making a client.
func (c RedisConfig) Validate() error {
	_, err := c.options()
	return err
}

// redisOptions holds the go-redis options of one deployment; exactly one
// field is set.
type redisOptions struct {
	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

func (o redisOptions) client() redis.UniversalClient {
	switch {
	case o.cluster != nil:
		return redis.NewClusterClient(o.cluster)
	case o.failover != nil:
		return redis.NewFailoverClient(o.failover)
	}
	return redis.NewClient(o.single)
}

// options checks c and turns it into go-redis options. Errors never show
// a password.
func (c RedisConfig) options() (redisOptions, error) {
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		return redisOptions{}, fmt.Errorf("session: key_prefix %q may not contain '{' or '}': Redis Cluster reads them as a hash tag", c.KeyPrefix)
	}
	if c.PoolSize < 0 || c.DialTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 {
		return redisOptions{}, errors.New("session: redis pool size and timeouts must not be negative")
	}
	if c.DB != nil && *c.DB < 0 {
		return redisOptions{}, errors.New("session: redis database number must not be negative")
	}
	var (
		o   redisOptions
		err error
	)
	switch c.Mode {
	case RedisSingle:
		o.single, err = c.singleOptions()
	case RedisCluster:
		o.cluster, err = c.clusterOptions()
	case RedisSentinel:
		o.failover, err = c.failoverOptions()
	default:
		return redisOptions{}, fmt.Errorf("session: redis mode must be %q, %q or %q, not %q", RedisSingle, RedisCluster, RedisSentinel, c.Mode)
	}
	if err != nil {
		return redisOptions{}, errors.New(c.redact(err.Error()))
	}
	return o, nil
}

func (c RedisConfig) singleOptions() (*redis.Options, error) {
	if c.URL == "" {
		return nil, errors.New("session: redis URL is required")
	}
	if len(c.Addrs) > 0 || c.MasterName != "" || c.SentinelUsername != "" || c.SentinelPassword != "" {
		return nil, errors.New("session: redis addresses, master name and sentinel credentials are for cluster and sentinel")
	}
	if err := checkURL(c.URL); err != nil {
		return nil, err
	}
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("session: invalid redis URL: %v", err)
	}
	if c.DB != nil {
		o.DB = *c.DB
	}
	return o, c.apply(common{&o.Username, &o.Password, &o.TLSConfig, false, &o.PoolSize,
		&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.DialerRetries, &o.ContextTimeoutEnabled})
}

func (c RedisConfig) clusterOptions() (*redis.ClusterOptions, error) {
	if c.MasterName != "" || c.SentinelUsername != "" || c.SentinelPassword != "" {
		return nil, errors.New("session: redis master name and sentinel credentials are for sentinel")
	}
	if c.DB != nil && *c.DB != 0 {
		return nil, errors.New("session: a Redis Cluster has only database 0")
	}
	var o *redis.ClusterOptions
	switch {
	case c.URL != "" && len(c.Addrs) > 0:
		return nil, errors.New("session: redis cluster takes node addresses or a URL, not both")
	case c.URL != "":
		if err := checkURL(c.URL); err != nil {
			return nil, err
		}
		if u, _ := url.Parse(c.URL); strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0" {
			return nil, errors.New("session: a Redis Cluster has only database 0; remove the path from the URL")
		}
		var err error
		if o, err = redis.ParseClusterURL(c.URL); err != nil {
			return nil, fmt.Errorf("session: invalid redis cluster URL: %v", err)
		}
	default:
		addrs, err := checkAddrs(c.Addrs, "cluster node")
		if err != nil {
			return nil, err
		}
		o = &redis.ClusterOptions{Addrs: addrs}
	}
	// Every command goes to the master of its slot: a replica may answer
	// with data that a logout already deleted.
	o.ReadOnly, o.RouteByLatency, o.RouteRandomly = false, false, false
	// ParseClusterURL sets the first node's host as the TLS server name;
	// each node is checked against its own host instead.
	return o, c.apply(common{&o.Username, &o.Password, &o.TLSConfig, true, &o.PoolSize,
		&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.DialerRetries, &o.ContextTimeoutEnabled})
}

func (c RedisConfig) failoverOptions() (*redis.FailoverOptions, error) {
	var o *redis.FailoverOptions
	switch {
	case c.URL != "" && (len(c.Addrs) > 0 || c.MasterName != ""):
		return nil, errors.New("session: redis sentinel takes a master name and sentinel addresses, or a URL, not both")
	case c.URL != "":
		if err := checkURL(c.URL); err != nil {
			return nil, err
		}
		var err error
		if o, err = redis.ParseFailoverURL(c.URL); err != nil {
			return nil, fmt.Errorf("session: invalid redis sentinel URL: %v", err)
		}
		if o.MasterName == "" {
			return nil, errors.New("session: redis sentinel URL needs the master's name: ?master_name=<name>")
		}
	default:
		if c.MasterName == "" {
			return nil, errors.New("session: redis sentinel needs the master's name")
		}
		addrs, err := checkAddrs(c.Addrs, "sentinel")
		if err != nil {
			return nil, err
		}
		o = &redis.FailoverOptions{MasterName: c.MasterName, SentinelAddrs: addrs}
	}
	// Only the master is used, for the same reason as in a cluster.
	o.ReplicaOnly, o.UseDisconnectedReplicas, o.RouteByLatency, o.RouteRandomly = false, false, false, false
	if c.SentinelUsername != "" {
		o.SentinelUsername = c.SentinelUsername
	}
	if c.SentinelPassword != "" {
		o.SentinelPassword = c.SentinelPassword
	}
	if c.DB != nil {
		o.DB = *c.DB
	}
	// The master's address comes from the sentinels; check each host dialled.
	return o, c.apply(common{&o.Username, &o.Password, &o.TLSConfig, true, &o.PoolSize,
		&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.DialerRetries, &o.ContextTimeoutEnabled})
}

// common points at the options every go-redis options struct has.
type common struct {
	user, password *string
	tls            **tls.Config
	// tlsPerHost drops a TLS server name that the URL set, so that each
	// address is checked against its own host.
	tlsPerHost                             bool
	poolSize                               *int
	dialTimeout, readTimeout, writeTimeout *time.Duration
	maxRetries, dialerRetries              *int
	contextTimeoutEnabled                  *bool
}

// apply sets c's common options over those from the URL.
func (c RedisConfig) apply(o common) error {
	var err error
	if *o.tls, err = c.tlsConfig(*o.tls, o.tlsPerHost); err != nil {
		return err
	}
	if c.Username != "" {
		*o.user = c.Username
	}
	if c.Password != "" {
		*o.password = c.Password
	}
	if c.PoolSize > 0 {
		*o.poolSize = c.PoolSize
	}
	*o.dialTimeout = orDefault(c.DialTimeout, *o.dialTimeout, defaultRedisDialTimeout)
	*o.readTimeout = orDefault(c.ReadTimeout, *o.readTimeout, defaultRedisReadTimeout)
	*o.writeTimeout = orDefault(c.WriteTimeout, *o.writeTimeout, defaultRedisWriteTimeout)
	// Few retries so an unreachable server costs a bounded, short time, and
	// honour the caller's deadline.
	*o.maxRetries = 1
	*o.dialerRetries = 1
	*o.contextTimeoutEnabled = true
	return nil
}

// tlsConfig returns the TLS settings: those of a rediss:// URL (fromURL)
// or of c.TLS, with c's CA file and server name.
func (c RedisConfig) tlsConfig(fromURL *tls.Config, perHost bool) (*tls.Config, error) {
	if fromURL == nil && !c.TLS {
		if c.TLSCAFile != "" || c.TLSServerName != "" {
			return nil, errors.New("session: redis TLS CA and server name need TLS (tls, or a rediss:// URL)")
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if fromURL != nil {
		cfg = fromURL.Clone()
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
		if perHost {
			cfg.ServerName = ""
		}
	}
	if c.TLSServerName != "" {
		cfg.ServerName = c.TLSServerName
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("session: reading the redis TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("session: redis TLS CA file %s holds no PEM certificate", c.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// checkURL checks the scheme of a Redis URL; go-redis also takes unix://,
// which none of the deployments here use.
func checkURL(raw string) error {
	if !strings.Contains(raw, "://") {
		// host:port alone: url.Parse's error would not say what is missing.
		hint := ""
		if !strings.ContainsAny(raw, "@/?#") { // no credentials to echo
			hint = fmt.Sprintf(" (for %q: redis://%s/0)", raw, raw)
		}
		return fmt.Errorf("session: redis URL has no scheme; write redis://host:port/db, or rediss://host:port/db for TLS%s", hint)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// *url.Error quotes the whole URL, password included; keep its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("session: invalid redis URL: %v", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return errors.New("session: redis URL must start with redis:// or rediss://, as in redis://host:port/db (rediss:// for TLS)")
	}
	return nil
}

// checkAddrs checks that each address is host:port.
func checkAddrs(addrs []string, what string) ([]string, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("session: redis %s address (host:port) is required", what)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" || strings.ContainsAny(a, "/@?#") {
			return nil, fmt.Errorf("session: redis %s address %q is not host:port", what, a)
		}
		out[i] = net.JoinHostPort(host, port)
	}
	return out, nil
}

// orDefault picks the configured value, else one set in the URL's query,
// else the package default.
func orDefault(configured, fromURL, def time.Duration) time.Duration {
	switch {
	case configured > 0:
		return configured
	case fromURL > 0:
		return fromURL
	}
	return def
}

// redact masks in msg every password c holds: its fields, and those in the
// URL's user info and query.
func (c RedisConfig) redact(msg string) string {
	secrets := []string{c.Password, c.SentinelPassword}
	if u, err := url.Parse(c.URL); err == nil {
		if pw, ok := u.User.Password(); ok {
			_, escaped, _ := strings.Cut(u.User.String(), ":")
			secrets = append(secrets, pw, escaped)
		}
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			secrets = append(secrets, q["password"]...)
			secrets = append(secrets, q["sentinel_password"]...)
		}
	} else if i := strings.LastIndex(c.URL, "@"); i > 0 {
		// Unparsable URL: mask everything before '@' that may be a secret.
		if j := strings.Index(c.URL, "://"); j >= 0 && j+3 < i {
			secrets = append(secrets, c.URL[j+3:i])
		}
	}
	// Longest first, so that a secret holding another is masked whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}
