//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

import "os"

// lockFile does nothing where flock(2) is not at hand (Windows, Solaris): keeping a second process off the
// file is then up to whoever starts them.
func lockFile(string) (*os.File, error) { return nil, nil }

func unlockFile(*os.File) error { return nil }
