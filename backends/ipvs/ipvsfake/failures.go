package ipvsfake

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInjected is the error of a call made to fail by FailNext with a nil
// error.
var ErrInjected = errors.New("ipvsfake: injected failure")

// calls is the call log and the pending failures of one fake. The fake's
// mutex guards it.
type calls struct {
	log  []string
	fail []failure
}

type failure struct {
	prefix string
	err    error
}

// record logs a call and returns the injected failure for it, if any.
func (c *calls) record(format string, args ...any) error {
	call := fmt.Sprintf(format, args...)
	c.log = append(c.log, call)
	for i, f := range c.fail {
		if strings.HasPrefix(call, f.prefix) {
			c.fail = append(c.fail[:i], c.fail[i+1:]...)
			if f.err == nil {
				return fmt.Errorf("%w of %q", ErrInjected, call)
			}
			return f.err
		}
	}
	return nil
}

func (c *calls) take() []string {
	out := c.log
	c.log = nil
	return out
}
