package iodriver

// The io_uring backend's control plane: one ring per worker, set up with
// raw syscalls (golang.org/x/sys has the syscall numbers, not the structs)
// and mapped into memory the data plane then owns. After SetupRing returns,
// nothing about the ring crosses into Go again until the C side unmaps it.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/asyncrt/asyncrt/runtime/dataplane"
)

// The kernel's struct io_uring_params and its two offset tables
// (include/uapi/linux/io_uring.h); 120 bytes, checked in uring_test.go.
type sqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

type cqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

type uringParams struct {
	SqEntries, CqEntries, Flags, SqThreadCPU, SqThreadIdle, Features, WqFd uint32
	Resv                                                                   [3]uint32
	SqOff                                                                  sqringOffsets
	CqOff                                                                  cqringOffsets
}

// Setup flags, features and register opcodes used here.
const (
	setupClamp       = 1 << 4 // IORING_SETUP_CLAMP (5.6)
	setupSubmitAll   = 1 << 7 // IORING_SETUP_SUBMIT_ALL (5.18)
	setupCoopTaskrun = 1 << 8 // IORING_SETUP_COOP_TASKRUN (5.19)
	setupTaskrunFlag = 1 << 9 // IORING_SETUP_TASKRUN_FLAG (5.19)
	featSingleMmap   = 1 << 0 // IORING_FEAT_SINGLE_MMAP (5.4)
	featNodrop       = 1 << 1 // IORING_FEAT_NODROP (5.5)
	featSubmitStable = 1 << 2 // IORING_FEAT_SUBMIT_STABLE (5.5)
	featRwCurPos     = 1 << 3 // IORING_FEAT_RW_CUR_POS (5.6)
	featFastPoll     = 1 << 5 // IORING_FEAT_FAST_POLL (5.7): a read on an empty socket waits, not EAGAIN
	offSqRing        = 0      // IORING_OFF_SQ_RING
	offSqes          = 0x10000000
	registerProbe    = 8 // IORING_REGISTER_PROBE (5.6)
	probeOpSupported = 1 // IO_URING_OP_SUPPORTED
	sqeSize          = 64
	cqeSize          = 16
	requiredFeatures = featSingleMmap | featNodrop | featSubmitStable | featRwCurPos | featFastPoll
	preferredSetup   = setupClamp | setupSubmitAll | setupCoopTaskrun | setupTaskrunFlag
	fallbackSetup    = setupClamp
)

// The opcodes the data plane writes (IORING_OP_*), with their names for the
// refusal message of an old kernel. The newest is SHUTDOWN (5.11).
var requiredOps = []struct {
	op   uint8
	name string
}{
	{0, "NOP"}, {1, "READV"}, {2, "WRITEV"}, {3, "FSYNC"}, {6, "POLL_ADD"}, {9, "SENDMSG"},
	{10, "RECVMSG"}, {11, "TIMEOUT"}, {13, "ACCEPT"}, {14, "ASYNC_CANCEL"}, {16, "CONNECT"},
	{18, "OPENAT"}, {19, "CLOSE"}, {22, "READ"}, {23, "WRITE"}, {26, "SEND"}, {27, "RECV"},
	{34, "SHUTDOWN"},
}

// RefuseEnv names the test hook that makes SetupRing fail as if the kernel
// had refused io_uring with that errno (EPERM, ENOSYS, EACCES, ...), so
// tests can prove the fallback to epoll on kernels that allow io_uring.
// Read from the C environment at each open, like ASYNCRT_IO.
const RefuseEnv = "ASYNCRT_IO_URING_REFUSE"

// getenv reads the C environment (a host's setenv after the library
// loaded counts); tests replace it.
var getenv = dataplane.Getenv

// Ring is one worker's io_uring: its fd, the parameters the kernel filled
// in (entries and offsets) and the two mappings. The data plane takes it
// over (art_io_uring_worker_new) and unmaps and closes it at its finalize;
// Close is for a ring that was never handed over.
type Ring struct {
	Fd       int
	Params   uringParams
	RingAddr uintptr // SQ and CQ rings, one mapping (IORING_FEAT_SINGLE_MMAP)
	RingSize uintptr
	SqesAddr uintptr
	SqesSize uintptr
	// CancelFD: the kernel took the 5.19 setup flags, so it also has
	// IORING_ASYNC_CANCEL_FD (5.19), which a CLOSE uses to end the ops
	// waiting on its fd.
	CancelFD bool
}

// RefusedError says why io_uring cannot be used here; Errno is the cause
// (the kernel's, or the simulated one of RefuseEnv).
type RefusedError struct {
	Errno  unix.Errno
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("io_uring refused: %s (errno %d, %s)", e.Reason, int(e.Errno), unix.ErrnoName(e.Errno))
}

func (e *RefusedError) Unwrap() error { return e.Errno }

// simulatedRefusal reads RefuseEnv: the errno it names, or 0.
func simulatedRefusal() unix.Errno {
	v := strings.TrimSpace(getenv(RefuseEnv))
	if v == "" || v == "0" {
		return 0
	}
	for n := unix.Errno(1); n < 4096; n++ { // x/sys names errnos, but has no lookup by name
		if unix.ErrnoName(n) == strings.ToUpper(v) {
			return n
		}
	}
	return unix.EPERM // a value that names no errno still asks for a refusal
}

// disabledReason explains an EPERM from io_uring_setup by the sysctl that
// usually causes it (Linux 6.6+: 1 = only the io_uring_group, 2 = nobody).
func disabledReason() string {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if err != nil {
		return ""
	}
	switch strings.TrimSpace(string(b)) {
	case "1":
		return "kernel.io_uring_disabled=1 (only members of kernel.io_uring_group may use it)"
	case "2":
		return "kernel.io_uring_disabled=2"
	}
	return ""
}

// SetupRing creates a ring of `entries` submission entries (a power of two;
// the kernel clamps larger ones) and maps it. A *RefusedError reports that
// io_uring cannot be used on this machine (the caller may fall back to
// epoll); any other error is a failure of this call.
func SetupRing(entries uint32) (*Ring, error) {
	if errno := simulatedRefusal(); errno != 0 {
		return nil, &RefusedError{errno, "simulated by " + RefuseEnv}
	}
	r := &Ring{Fd: -1}
	fd, errno := setup(entries, preferredSetup, &r.Params)
	r.CancelFD = errno == 0
	if errno == unix.EINVAL { // a kernel older than 5.19 rejects the newer flags
		fd, errno = setup(entries, fallbackSetup, &r.Params)
	}
	if errno == unix.EMFILE || errno == unix.ENFILE {
		return nil, fmt.Errorf("io_uring_setup: %w", errno) // a failure, not a refusal: epoll would fail too
	}
	if errno != 0 {
		reason := "io_uring_setup failed"
		switch errno {
		case unix.ENOSYS:
			reason = "io_uring_setup is not implemented (an old kernel, or a seccomp filter)"
		case unix.EPERM, unix.EACCES:
			if why := disabledReason(); why != "" {
				reason = "io_uring_setup is not allowed: " + why
			} else {
				reason = "io_uring_setup is not allowed (a seccomp filter or a security module)"
			}
		case unix.EINVAL:
			reason = "io_uring_setup rejected its parameters (a kernel older than 5.6)"
		case unix.ENOMEM:
			reason = "io_uring_setup: no memory (RLIMIT_MEMLOCK on kernels before 5.12)"
		}
		return nil, &RefusedError{errno, reason}
	}
	r.Fd = fd
	if err := r.check(); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.mapRings(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func setup(entries uint32, flags uint32, p *uringParams) (int, unix.Errno) {
	*p = uringParams{Flags: flags}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), 0
}

// check refuses a kernel that lacks a feature or an opcode the data plane
// relies on.
func (r *Ring) check() error {
	if missing := requiredFeatures &^ r.Params.Features; missing != 0 {
		return &RefusedError{unix.ENOTSUP, fmt.Sprintf("the kernel lacks io_uring features %#x (needs Linux 5.7)", missing)}
	}
	// struct io_uring_probe: 16 bytes of header, then 8 bytes per opcode.
	const nops = 64
	var probe [16 + 8*nops]byte
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.Fd), registerProbe,
		uintptr(unsafe.Pointer(&probe[0])), nops, 0, 0)
	if errno != 0 {
		return &RefusedError{errno, "IORING_REGISTER_PROBE failed (a kernel older than 5.6)"}
	}
	lastOp := probe[0]
	var missing []string
	for _, o := range requiredOps {
		if o.op > lastOp || probe[16+8*int(o.op)+2]&probeOpSupported == 0 { // ops[i].flags (u16, little end first)
			missing = append(missing, o.name)
		}
	}
	if len(missing) > 0 {
		return &RefusedError{unix.ENOTSUP, "the kernel lacks io_uring opcodes " + strings.Join(missing, ", ") +
			" (needs Linux 5.11)"}
	}
	return nil
}

func (r *Ring) mapRings() error {
	p := &r.Params
	sqSize := uintptr(p.SqOff.Array) + uintptr(p.SqEntries)*4
	cqSize := uintptr(p.CqOff.Cqes) + uintptr(p.CqEntries)*cqeSize
	r.RingSize = max(sqSize, cqSize)
	addr, err := mmap(r.RingSize, r.Fd, offSqRing)
	if err != nil {
		err = fmt.Errorf("io_uring: mmap of the rings (%d bytes): %w", r.RingSize, err)
		r.RingSize = 0
		return err
	}
	r.RingAddr = addr
	r.SqesSize = uintptr(p.SqEntries) * sqeSize
	addr, err = mmap(r.SqesSize, r.Fd, offSqes)
	if err != nil {
		r.SqesSize = 0
		return fmt.Errorf("io_uring: mmap of the submission entries: %w", err)
	}
	r.SqesAddr = addr
	return nil
}

// mmap maps the ring's memory with the raw syscall, so that the data plane
// can munmap it (x/sys's Mmap keeps its own table of mappings).
func mmap(size uintptr, fd int, off uintptr) (uintptr, error) {
	addr, _, errno := unix.Syscall6(unix.SYS_MMAP, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_POPULATE, uintptr(fd), off)
	if errno != 0 {
		return 0, errno
	}
	return addr, nil
}

// Close unmaps and closes a ring the data plane did not take over.
func (r *Ring) Close() {
	if r.SqesAddr != 0 {
		unix.Syscall(unix.SYS_MUNMAP, r.SqesAddr, r.SqesSize, 0)
		r.SqesAddr = 0
	}
	if r.RingAddr != 0 {
		unix.Syscall(unix.SYS_MUNMAP, r.RingAddr, r.RingSize, 0)
		r.RingAddr = 0
	}
	if r.Fd >= 0 {
		unix.Close(r.Fd)
		r.Fd = -1
	}
}

// IsRefused reports whether err says io_uring cannot be used here (as
// opposed to a failure such as running out of memory).
func IsRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}
