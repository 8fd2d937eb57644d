package cli

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// What the sample service shows of the secrets and configs it was given.
// A docker task finds them where Docker puts them (a secret under
// /run/secrets, a config at its target); a process task below the
// directories the process driver names in its environment.
const (
	sampleSecretsDir = "/run/secrets"
	envSecretsDir    = "FLOTILLA_SECRETS_DIR" // agent.EnvSecretsDir
	envConfigsDir    = "FLOTILLA_CONFIGS_DIR" // agent.EnvConfigsDir
)

// secretLine says that a secret arrived, with its size and the start
// of its SHA-256: never its value.
func secretLine(target string) string {
	path := filepath.Join(sampleSecretsDir, target)
	if filepath.IsAbs(target) {
		path = target
	}
	if dir := os.Getenv(envSecretsDir); dir != "" {
		path = filepath.Join(dir, target)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("secret %s: not received (%v)", target, err)
	}
	sum := sha256.Sum256(data)
	return fmt.Sprintf("secret %s: received, %d bytes, sha256 %x… (its value is not shown)", target, len(data), sum[:6])
}

// configLine shows a config's text, its lines after the first
// indented under it.
func configLine(target string) string {
	path := target
	if dir := os.Getenv(envConfigsDir); dir != "" {
		path = filepath.Join(dir, target)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("config %s: not received (%v)", target, err)
	}
	text := strings.ReplaceAll(strings.TrimSpace(string(data)), "\n", "\n    ")
	return fmt.Sprintf("config %s: %s", target, text)
}
