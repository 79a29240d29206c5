package iodriver

// The io_uring backend's opener: a ring per worker (SetupRing), handed to
// the data plane (art_io_uring.c), unmapped and closed after the worker's
// registration is gone.

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
	"github.com/asyncrt/asyncrt/runtime/status"
)

func init() { openURing = openURingWorker }

func openURingWorker(io dataplane.IO, i int, cfg Config) (URingWorker, error) {
	entries := cfg.RingEntries
	if entries == 0 {
		entries = 256
	}
	r, err := SetupRing(entries)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) { // AUTO falls back on ENOTSUP
			return URingWorker{}, status.Errorf(status.ENOTSUP, "asyncrt_io_open: %v", err)
		}
		var errno unix.Errno
		if errors.As(err, &errno) {
			return URingWorker{}, status.Errorf(status.EOS, "asyncrt_io_open: worker %d: %v (errno %d, %s)", i, err,
				int(errno), unix.ErrnoName(errno))
		}
		return URingWorker{}, status.Errorf(status.EOS, "asyncrt_io_open: worker %d: %v", i, err)
	}
	w, err := io.URingWorkerOf(i, dataplane.URingRing{
		Fd:           r.Fd,
		KernelParams: unsafe.Pointer(&r.Params),
		Ring:         r.RingAddr,
		Sqes:         r.SqesAddr,
		CancelFD:     r.CancelFD,
	})
	if err != nil {
		r.Close()
		return URingWorker{}, err
	}
	return URingWorker{Fd: r.Fd, Worker: w, Cleanup: r.Close}, nil
}
