package status

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The Go mirror must hold exactly the header's codes with the same values.
func TestStatusMatchesHeader(t *testing.T) {
	src, err := os.ReadFile("../../include/asyncrt.h")
	if err != nil {
		t.Fatal(err)
	}
	enum := regexp.MustCompile(`(?s)typedef enum asyncrt_status \{(.*?)\} asyncrt_status;`).FindSubmatch(src)
	if enum == nil {
		t.Fatal("asyncrt_status enum not found in the header")
	}
	entries := regexp.MustCompile(`(ASYNCRT_[A-Z]+) = (\d+)`).FindAllSubmatch(enum[1], -1)
	if len(entries) != len(names) {
		t.Errorf("header has %d statuses, Go mirror has %d", len(entries), len(names))
	}
	for _, m := range entries {
		v, _ := strconv.Atoi(string(m[2]))
		if got := Code(v).Name(); got != string(m[1]) {
			t.Errorf("Code(%d).Name() = %q, want %q", v, got, m[1])
		}
	}
}
