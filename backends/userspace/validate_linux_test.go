package userspace_test

import (
	"errors"
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/userspace"
)

func TestNewRefusesInvalidConfig(t *testing.T) {
	for name, s := range invalidSpecs {
		if _, err := userspace.New(s, userspace.Options{}); !errors.Is(err, backends.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := userspace.New(userspace.Spec{}, userspace.Options{DialTimeout: -1}); !errors.Is(err, backends.ErrInvalidConfig) {
		t.Errorf("negative DialTimeout: New = %v, want ErrInvalidConfig", err)
	}
}
