package gofuture

import (
	"errors"
	"fmt"
	rtcgo "runtime/cgo"

	"github.com/asyncrt/asyncrt/runtime/status"
)

// Future is a future written in Go. Poll advances it: done reports that it
// completed, a non-nil err that it failed (done is then ignored); when
// neither, it is pending and must have arranged to be woken, with cx.Wake
// or a Waker from cx.Waker. Poll is called on an executor's thread, never
// twice at once, never after it reported done or an error. It must not call
// runtime.Goexit (t.FailNow in a test): that cannot unwind through C.
type Future interface {
	Poll(cx Context) (done bool, err error)
}

// testHookDrop, when set, sees each future the runtime dropped, with the
// handle the drop released.
var testHookDrop func(f Future, h rtcgo.Handle)

// poll runs one poll of f and turns its answer into an asyncrt_poll value.
func (pc *pollContext) poll(f Future) int {
	done, err := f.Poll(Context{pc})
	switch {
	case err != nil:
		return pc.fail(failure(err))
	case done:
		return pollReady
	default:
		return pollPending
	}
}

// failure is the status and message a poll's error gives its task: the
// code of a *status.Error (found through wrapping), else EFAILED.
func failure(err error) (status.Code, string) {
	var se *status.Error
	if !errors.As(err, &se) || se.Code <= status.OK {
		return status.EFAILED, err.Error()
	}
	if error(se) == err {
		return se.Code, se.Message // the code is the status: no need to repeat its name
	}
	return se.Code, err.Error()
}

// panicFailure is the status and message a panic in a poll gives its task.
func panicFailure(v any) (status.Code, string) {
	return status.EINTERNAL, fmt.Sprintf("Go panic in a future's poll: %v", v)
}
