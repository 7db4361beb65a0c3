package fakegitlab_test

import (
	"testing"
	"time"

	"github.com/shipbot/shipbot/test/fakegitlab"
)

// An outage lasts until ended, for the matching requests only; a 429
// carries the rate limit headers.
func TestOutageLastsUntilEnded(t *testing.T) {
	s := fakegitlab.New(t, token)
	end := s.Outage("", "projects/1/environments", 429)
	env := map[string]any{"name": "staging"}
	for range 3 {
		r := call(t, s, "POST", "/api/v4/projects/1/environments", token, env)
		if r.code != 429 || r.header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("during the outage: %d %v", r.code, r.header)
		}
	}
	if r := call(t, s, "GET", "/api/v4/projects/2/environments", token, nil); r.code != 200 {
		t.Errorf("another project during the outage: %d", r.code)
	}
	end()
	end() // ending twice is harmless
	if r := call(t, s, "POST", "/api/v4/projects/1/environments", token, env); r.code != 201 {
		t.Errorf("after the outage: %d %s", r.code, r.raw)
	}
	if envs := s.Environments(1); len(envs) != 1 {
		t.Errorf("environments = %+v, want the one created after the outage", envs)
	}
}

// A hung request is answered only once the hang ends.
func TestHangHoldsUntilEnded(t *testing.T) {
	s := fakegitlab.New(t, token)
	end := s.Hang("GET", "projects/1/environments")
	got := make(chan int, 1)
	go func() { got <- call(t, s, "GET", "/api/v4/projects/1/environments", token, nil).code }()
	select {
	case code := <-got:
		t.Fatalf("answered %d during the hang", code)
	case <-time.After(200 * time.Millisecond):
	}
	end()
	select {
	case code := <-got:
		if code != 200 {
			t.Errorf("after the hang: %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still held after the hang ended")
	}
}
