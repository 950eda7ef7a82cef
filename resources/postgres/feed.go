package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fhirbox/fhirbox/resources"
)

// feedChannel is the LISTEN/NOTIFY channel of the change feed.
const feedChannel = "fhirbox_write"

const notifySQL = `SELECT pg_notify($1, $2)`

// notifyTypes are the types whose writes are announced to every server process: the
// ones that in-memory caches hold (policies, clients, users, sessions) and the
// SearchParameters that every process's registry holds. Other types are not announced,
// so bulk writes of clinical data cost no notification.
var notifyTypes = map[string]bool{"AccessPolicy": true, "Client": true, "User": true, "Session": true, "SearchParameter": true}

// notifyCreates are the announced types whose creations are news too: what did not
// exist cannot be cached, but a new policy or search parameter applies at once.
var notifyCreates = map[string]bool{"AccessPolicy": true, "SearchParameter": true}

type feedEvent struct {
	Type    string `json:"t"`
	ID      string `json:"i"`
	Deleted bool   `json:"d,omitempty"`
}

func encodeEvent(r *resources.Resource) string {
	b, _ := json.Marshal(feedEvent{Type: r.Type, ID: r.ID, Deleted: r.Deleted})
	return string(b)
}

// Listen delivers every committed write of the announced types (notifyTypes), by any
// process on this database, this one included, to fn until ctx ends. Each time its connection is (re)established fn first receives a Reset event:
// writes made while it was not listening are unknown, so caches reload. It runs on a
// connection of its own (application_name fhirbox-listener) and returns when ctx ends.
func (s *Store) Listen(ctx context.Context, fn func(resources.WriteEvent)) {
	cfg := s.pcfg.Copy()
	cfg.RuntimeParams["application_name"] = "fhirbox-listener"
	// The listening connection runs no statement that could be slow.
	delete(cfg.RuntimeParams, "statement_timeout")
	pause := minBackoff
	for ctx.Err() == nil {
		start := time.Now()
		err := s.listenOnce(ctx, cfg, fn)
		if err == nil || ctx.Err() != nil {
			return
		}
		// A connection that broke after a long while is news; one that keeps breaking
		// at once (its backend terminated over and over) is retried ever more slowly.
		// While the database is unreachable the breaker spaces the attempts out.
		if time.Since(start) > time.Minute {
			pause = minBackoff
		}
		wait := pause
		var ue errUnreachable
		if errors.As(err, &ue) {
			wait = ue.wait
		} else {
			pause = min(2*pause, maxBackoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, fn func(resources.WriteEvent)) error {
	trial, err := s.brk.allow()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	switch {
	case err == nil:
		s.brk.success()
	case ctx.Err() != nil:
		s.brk.abandon(trial)
		return err
	default:
		s.brk.failure(trial, err)
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+feedChannel); err != nil {
		return err
	}
	fn(resources.WriteEvent{Reset: true})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var ev feedEvent
		if json.Unmarshal([]byte(n.Payload), &ev) != nil || ev.Type == "" {
			continue
		}
		fn(resources.WriteEvent{Type: ev.Type, ID: ev.ID, Deleted: ev.Deleted})
	}
}
