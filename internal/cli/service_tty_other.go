//go:build !unix

package cli

import "os"

// terminalWidth is the width of the terminal f, or 0 when unknown.
func terminalWidth(*os.File) int { return 0 }
