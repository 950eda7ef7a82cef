//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// fileLock is the lock that keeps other fhirbox processes off a database file.
type fileLock struct {
	f  *os.File
	id fileID
}

// fileID names a file whatever the path it is reached by: a symbolic link, a hard link
// or a bind mount leads to the same device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// locked holds the files this process has locked. A second descriptor of a file that
// SQLite has open must not be opened and closed in the same process: closing any
// descriptor of a file drops every POSIX lock the process holds on it, SQLite's own
// included.
var locked = struct {
	sync.Mutex
	ids map[fileID]bool
}{ids: map[fileID]bool{}}

// lockFile takes an exclusive lock (flock(2)) on the database file db itself, created
// empty if need be, without waiting. A lock on the file rather than on a name keeps a
// second process off however it names the file, through a symbolic or a hard link
// included. flock locks and the POSIX locks that SQLite takes on the same file are
// independent of each other, so SQLite (and other tools that open the file, such as
// fhirbench or the sqlite3 shell) work as before. The kernel releases the lock when the
// process ends, however it ends.
func lockFile(db string) (*fileLock, error) {
	inUse := fmt.Errorf("sqlite: %s is %w: one process per database file", db, ErrInUse)
	locked.Lock()
	defer locked.Unlock()
	if fi, err := os.Stat(db); err == nil {
		if id, ok := idOf(fi); ok && locked.ids[id] {
			return nil, inUse
		}
	}
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	id, _ := idOf(fi)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUse
		}
		return nil, fmt.Errorf("sqlite: locking %s: %w", db, err)
	}
	locked.ids[id] = true
	return &fileLock{f: f, id: id}, nil
}

// unlockFile releases l, once SQLite has closed the file.
func unlockFile(l *fileLock) error {
	locked.Lock()
	defer locked.Unlock()
	delete(locked.ids, l.id)
	// Closing the file releases the lock.
	return l.f.Close()
}
