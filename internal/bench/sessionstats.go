package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// watchSessions prints, every interval until ctx ends, what the simulated
// nodes see: how many beat lately, where their sessions are and the
// errors of those that failed. A run that does not converge says why.
func watchSessions(ctx context.Context, nodes []*simNode, every, fresh time.Duration, out io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			progress(out, "  nodes: %s\n", sessionStats(nodes, fresh))
		}
	}
}

var addrPattern = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// sessionStats counts nodes without a beat for fresh, sessions per manager
// and the nodes' last errors (addresses left out, so that they group).
func sessionStats(nodes []*simNode, fresh time.Duration) string {
	stale := 0
	errs := map[string]int{}
	for _, n := range nodes {
		ok, _, err := n.session.Status()
		if time.Since(ok) > fresh {
			stale++
		}
		if err != nil {
			msg := addrPattern.ReplaceAllString(err.Error(), "ADDR")
			if len(msg) > 140 {
				msg = msg[:140]
			}
			errs[msg]++
		}
	}
	keys := slices.SortedFunc(maps.Keys(errs), func(a, b string) int { return errs[b] - errs[a] })
	parts := []string{}
	for i, k := range keys {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %q", errs[k], k))
	}
	return fmt.Sprintf("%d without a beat for %v; sessions %s; errors: %s", stale, fresh, sessionSpread(nodes), strings.Join(parts, "; "))
}
