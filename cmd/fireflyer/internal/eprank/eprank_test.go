package eprank

import "testing"

// TestChoice: ucx bootstraps over tcp and tells its ranks so; tcp and unix
// are their own network; nothing else is a process transport.
func TestChoice(t *testing.T) {
	for _, c := range []struct {
		tr, network string
		env         int
	}{{"tcp", "tcp", 0}, {"unix", "unix", 0}, {"ucx", "tcp", 1}} {
		if !IsProcess(c.tr) || Network(c.tr) != c.network || len(Env(c.tr)) != c.env {
			t.Errorf("%s: IsProcess %v, Network %q, Env %v", c.tr, IsProcess(c.tr), Network(c.tr), Env(c.tr))
		}
	}
	if Env("ucx")[0] != EnvTransport+"=ucx" {
		t.Errorf("Env(ucx) = %v", Env("ucx"))
	}
	for _, bad := range []string{"inproc", "", "rdma", "UCX"} {
		if IsProcess(bad) {
			t.Errorf("IsProcess(%q)", bad)
		}
	}
}
