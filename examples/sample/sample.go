// Package sample carries the sample application's compose file and the
// files it names, as they are in the repository, so that the flotilla
// binary can deploy it (`flotilla sandbox up`) from any directory.
package sample

import "embed"

// ComposeFile is the name of the compose file in Files.
const ComposeFile = "compose.yml"

// Files holds compose.yml and the secret and config files beside it.
//
//go:embed compose.yml api_token.txt motd.txt
var Files embed.FS
