package manager

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestValidateHealthcheck(t *testing.T) {
	for _, tc := range []struct {
		h    *container.HealthConfig
		want string // "" = accepted
	}{
		{nil, ""},
		{&container.HealthConfig{}, ""},
		{&container.HealthConfig{Test: []string{"NONE"}}, ""},
		{&container.HealthConfig{Test: []string{"CMD", "/bin/true"}, Interval: time.Millisecond, Retries: 1}, ""},
		{&container.HealthConfig{Test: []string{"CMD-SHELL", "test -f /ok"}, StartPeriod: time.Minute, StartInterval: time.Second}, ""},
		{&container.HealthConfig{Interval: 2 * time.Second}, ""}, // timings for the image's own check
		{&container.HealthConfig{Test: []string{"NONE", "x"}}, `["NONE"] takes no arguments`},
		{&container.HealthConfig{Test: []string{"CMD"}}, `["CMD", ...] needs a program`},
		{&container.HealthConfig{Test: []string{"CMD", ""}}, `["CMD", ...] needs a program`},
		{&container.HealthConfig{Test: []string{"CMD-SHELL"}}, "exactly one non-empty shell command"},
		{&container.HealthConfig{Test: []string{"CMD-SHELL", " "}}, "exactly one non-empty shell command"},
		{&container.HealthConfig{Test: []string{"true"}}, `unknown form "true"`},
		{&container.HealthConfig{Test: []string{"CMD", "x"}, Interval: -time.Second}, "Interval -1s must not be negative"},
		{&container.HealthConfig{Test: []string{"CMD", "x"}, Timeout: 999 * time.Microsecond}, "Timeout 999µs cannot be less than 1ms"},
		{&container.HealthConfig{Test: []string{"CMD", "x"}, StartPeriod: time.Nanosecond}, "StartPeriod 1ns cannot be less than 1ms"},
		{&container.HealthConfig{Test: []string{"CMD", "x"}, StartInterval: -1}, "StartInterval -1ns must not be negative"},
		{&container.HealthConfig{Test: []string{"CMD", "x"}, Retries: -3}, "Retries -3 must not be negative"},
	} {
		err := validateHealthcheck(tc.h)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: refused: %v", tc.h, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err %v, want one containing %q", tc.h, err, tc.want)
		}
	}
}
