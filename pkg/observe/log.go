// Package observe holds fhirbox's operational plumbing: structured logging, request ids,
// the access log and Prometheus metrics.
package observe

import (
	"io"
	"log/slog"
	"os"
)

// NewLogger returns a human-readable text logger for a terminal and a JSON logger
// otherwise, so that log shippers get one object a line.
func NewLogger(w io.Writer, isTerminal bool, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if isTerminal {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// IsTerminal reports whether f is a character device such as a terminal.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
