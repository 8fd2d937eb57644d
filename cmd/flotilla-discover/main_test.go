package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelperAnswersAndRefuses(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "aws") {
		t.Fatalf("no spec: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"provider=nosuch"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `no provider "nosuch"`) {
		t.Fatalf("unknown provider: exit %d, %q", code, errOut.String())
	}
	// The cloud providers are built in: aws checks its arguments.
	errOut.Reset()
	if code := run([]string{"provider=aws", "tag_key=role", "tag_value=x", "port=http"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not a port number") {
		t.Fatalf("bad port: exit %d, %q", code, errOut.String())
	}
}
