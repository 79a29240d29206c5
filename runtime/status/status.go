// Package status holds asyncrt's status codes, mirrored from asyncrt_status in
// include/asyncrt.h, and the error type the Go control plane returns. Values
// only grow and are never reused; TestStatusMatchesHeader keeps the two lists
// equal.
package status

import "fmt"

// Code is an asyncrt_status value.
type Code int

// The codes of include/asyncrt.h.
const (
	OK         Code = 0
	EINVAL     Code = 1
	EHANDLE    Code = 2
	ESHUTDOWN  Code = 3
	ENOMEM     Code = 4
	ELIMIT     Code = 5
	ECANCELLED Code = 6
	EREENTRANT Code = 7
	EBUSY      Code = 8
	ETIMEDOUT  Code = 9
	EFORKED    Code = 10
	EVERSION   Code = 11
	EINTERNAL  Code = 12
	EFAILED    Code = 13
	EAGAIN     Code = 14
	ENOTSUP    Code = 15
	ESCOPE     Code = 16
	ECLOSED    Code = 17
	ELAGGED    Code = 18
	EOS        Code = 19
)

var names = map[Code]string{
	OK: "ASYNCRT_OK", EINVAL: "ASYNCRT_EINVAL", EHANDLE: "ASYNCRT_EHANDLE",
	ESHUTDOWN: "ASYNCRT_ESHUTDOWN", ENOMEM: "ASYNCRT_ENOMEM", ELIMIT: "ASYNCRT_ELIMIT",
	ECANCELLED: "ASYNCRT_ECANCELLED", EREENTRANT: "ASYNCRT_EREENTRANT", EBUSY: "ASYNCRT_EBUSY",
	ETIMEDOUT: "ASYNCRT_ETIMEDOUT", EFORKED: "ASYNCRT_EFORKED", EVERSION: "ASYNCRT_EVERSION",
	EINTERNAL: "ASYNCRT_EINTERNAL", EFAILED: "ASYNCRT_EFAILED", EAGAIN: "ASYNCRT_EAGAIN",
	ENOTSUP: "ASYNCRT_ENOTSUP", ESCOPE: "ASYNCRT_ESCOPE",
	ECLOSED: "ASYNCRT_ECLOSED", ELAGGED: "ASYNCRT_ELAGGED",
	EOS: "ASYNCRT_EOS",
}

// Name is the header's name for c, or "" for a value the header lacks.
func (c Code) Name() string { return names[c] }

// Error is a failure with its status and a message for asyncrt_last_error.
// A Message that is empty means the data plane already recorded the message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code.Name(), e.Message) }

// Errorf makes an *Error.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}
