package iodriver

import (
	"errors"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
)

func TestUringParamsLayout(t *testing.T) {
	// struct io_uring_params is 120 bytes; sq_off at 40, cq_off at 80.
	var p uringParams
	if got := unsafe.Sizeof(p); got != 120 {
		t.Fatalf("sizeof(uringParams) = %d, want 120", got)
	}
	if got := unsafe.Offsetof(p.SqOff); got != 40 {
		t.Fatalf("offsetof(SqOff) = %d, want 40", got)
	}
	if got := unsafe.Offsetof(p.CqOff); got != 80 {
		t.Fatalf("offsetof(CqOff) = %d, want 80", got)
	}
}

func TestSimulatedRefusal(t *testing.T) {
	getenv = os.Getenv // t.Setenv sets Go's copy and the C environment; read Go's
	defer func() { getenv = dataplane.Getenv }()
	for _, tc := range []struct {
		env  string
		want unix.Errno
	}{{"EPERM", unix.EPERM}, {"enosys", unix.ENOSYS}, {"EACCES", unix.EACCES}, {"nonsense", unix.EPERM}} {
		t.Setenv(RefuseEnv, tc.env)
		r, err := SetupRing(8)
		if err == nil {
			r.Close()
			t.Fatalf("%s=%s: SetupRing succeeded, want a refusal", RefuseEnv, tc.env)
		}
		if !IsRefused(err) || !errors.Is(err, tc.want) {
			t.Fatalf("%s=%s: got %v, want a refusal with %v", RefuseEnv, tc.env, err, tc.want)
		}
	}
}

// On a kernel that allows io_uring the ring is mapped and its layout is the
// one asked for; elsewhere the refusal must say so (and the test is skipped).
func TestSetupRing(t *testing.T) {
	t.Setenv(RefuseEnv, "")
	r, err := SetupRing(8)
	if IsRefused(err) {
		t.Skipf("io_uring is refused here: %v", err)
	}
	if err != nil {
		t.Fatalf("SetupRing: %v", err)
	}
	defer r.Close()
	if r.Params.SqEntries != 8 || r.Params.CqEntries < 8 {
		t.Fatalf("entries: sq %d cq %d, want sq 8", r.Params.SqEntries, r.Params.CqEntries)
	}
	if r.RingAddr == 0 || r.RingSize < uintptr(r.Params.CqOff.Cqes)+uintptr(r.Params.CqEntries)*cqeSize {
		t.Fatalf("rings: addr %#x size %d, cqes at %d", r.RingAddr, r.RingSize, r.Params.CqOff.Cqes)
	}
	if r.SqesAddr == 0 || r.SqesSize != 8*sqeSize {
		t.Fatalf("sqes: addr %#x size %d", r.SqesAddr, r.SqesSize)
	}
}
