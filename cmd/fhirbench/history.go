package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
)

// The history-system scenario: the first page of GET /fhir/_history, the newest versions
// of every FHIR type, as a client watching what changes on the server reads it. The
// page is full, so the server also counts every version of the FHIR types for the
// Bundle's total: that count, which grows with the database, is most of the work.

// historyPath is the request of history-system.
var historyPath = "/fhir/_history?_count=" + strconv.Itoa(searchCount)

// ownTypes are fhirbox's own types, which /fhir does not serve: the server names them
// (bound) to leave them out, as here (written into the SQL).
var ownTypes = []string{"AccessPolicy", "AuthorizationCode", "Client", "Session", "User"}

// historyFrom is the FROM and WHERE of the server's system-level history at /fhir
// (resources/sqlstore/history.go).
var historyFrom = " FROM resource_history h WHERE h.resource_type NOT IN ('" + strings.Join(ownTypes, "', '") + "')"

// historyPageSQL is the server's page statement: one row more than the page, to know
// that a next page has any.
var historyPageSQL = "SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.content" + historyFrom +
	" ORDER BY h.last_updated DESC, h.version_id DESC, h.resource_type, h.id LIMIT " + strconv.Itoa(searchCount+1)

// historyCountSQL is the server's count of a full page's history.
var historyCountSQL = "SELECT count(*)" + historyFrom

// historyHTTPOp is history-system's request to the server.
func historyHTTPOp(api *API) Op {
	return func(ctx context.Context, _ *rand.Rand) error {
		_, _, err := api.Do(ctx, http.MethodGet, historyPath, "/fhir/_history", nil, false)
		return err
	}
}

// historyCeiling runs history-system's two statements and returns the page's size and
// the total.
func historyCeiling(ctx context.Context, db *DB) (page, total int, err error) {
	rows, err := db.Query(ctx, historyPageSQL)
	if err != nil {
		return 0, 0, err
	}
	for rows.Next() {
		// The instant and the flag are stored differently by each backend.
		var typ, id string
		var version int64
		var lastUpdated, deleted any
		var content []byte
		if err := rows.Scan(&typ, &id, &version, &lastUpdated, &deleted, &content); err != nil {
			rows.Close()
			return 0, 0, err
		}
		page++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	err = db.QueryRow(ctx, historyCountSQL).Scan(&total)
	return page, total, err
}
