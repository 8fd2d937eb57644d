package cli

import "time"

// The service tests drive fake daemons through many polls: keep them fast.
func init() { serviceProgressInterval = time.Millisecond }
