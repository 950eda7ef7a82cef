//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

// fileLock is nothing where flock(2) is not at hand.
type fileLock struct{}

// lockFile does nothing where flock(2) is not at hand (Windows, Solaris): keeping a second process off the
// file is then up to whoever starts them.
func lockFile(string) (*fileLock, error) { return nil, nil }

func unlockFile(*fileLock) error { return nil }
