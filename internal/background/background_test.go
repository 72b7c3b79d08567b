package background

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeTime is a clock whose sleeps pass at once and advance it.
type fakeTime struct {
	now    time.Time
	slept  []time.Duration
	onWait func()
}

func (f *fakeTime) Now() time.Time { return f.now }

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) bool {
	f.slept = append(f.slept, d)
	f.now = f.now.Add(d)
	if f.onWait != nil {
		f.onWait()
	}
	return ctx.Err() == nil
}

func TestSuperviseRestartsWithBackoff(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	ft := &fakeTime{now: time.Unix(1e9, 0)}
	var counted []string
	r := Runner{Logger: zap.New(core), Panicked: func(job string) { counted = append(counted, job) }, Now: ft.Now, Sleep: ft.Sleep}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := 0
	r.Supervise(ctx, "feed", func(context.Context) {
		runs++
		switch runs {
		case 1, 2, 3:
			panic("boom")
		case 4:
			ft.now = ft.now.Add(2 * MaxBackoff) // a long healthy run, then a panic
			panic("late")
		}
		// the fifth run returns normally, as a job does when ctx ends
	})
	if runs != 5 {
		t.Fatalf("%d runs, want 5", runs)
	}
	want := []time.Duration{MinBackoff, 2 * MinBackoff, 4 * MinBackoff, MinBackoff}
	if len(ft.slept) != len(want) {
		t.Fatalf("slept %v, want %v", ft.slept, want)
	}
	for i := range want {
		if ft.slept[i] != want[i] {
			t.Fatalf("slept %v, want %v", ft.slept, want)
		}
	}
	if len(counted) != 4 || counted[0] != "feed" {
		t.Fatalf("counted %v", counted)
	}
	if logs.Len() != 4 || logs.All()[0].ContextMap()["stack"] == "" || logs.All()[0].ContextMap()["panic"] != "boom" {
		t.Fatalf("logs: %v", logs.All())
	}
}

func TestSuperviseStopsWithItsContext(t *testing.T) {
	ft := &fakeTime{now: time.Unix(1e9, 0)}
	ctx, cancel := context.WithCancel(context.Background())
	ft.onWait = cancel
	runs := 0
	Runner{Now: ft.Now, Sleep: ft.Sleep}.Supervise(ctx, "keys", func(context.Context) { runs++; panic("x") })
	if runs != 1 {
		t.Fatalf("%d runs after the context ended", runs)
	}
}

func TestGoRecovers(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{})
	Runner{Panicked: func(string) { n.Add(1); close(done) }}.Go("event", func() { panic("x") })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the panic was not recovered and counted")
	}
	if n.Load() != 1 {
		t.Fatalf("counted %d", n.Load())
	}
}
