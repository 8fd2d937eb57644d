package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTicks is how Linux counts CPU time in /proc/PID/stat (USER_HZ).
const cpuTicks = 100

// procCPU returns the CPU time (user + system) a process has used so far;
// pid 0 means this process. A noisy host changes wall-clock figures from
// run to run; the CPU a run needs changes much less, so the benches report
// both.
func procCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields we want follow its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3 of the whole line, utime 14, stime 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / cpuTicks
}

// cpuMeter measures the CPU used by a set of processes over a span.
type cpuMeter struct {
	pids  []int
	start []time.Duration
}

func newCPUMeter(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	for _, p := range pids {
		m.start = append(m.start, procCPU(p))
	}
	return m
}

// used returns each process's CPU time since the meter was made.
func (m *cpuMeter) used() []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, p := range m.pids {
		out[i] = procCPU(p) - m.start[i]
	}
	return out
}
