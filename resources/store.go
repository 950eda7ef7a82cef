package resources

import (
	"context"
	"net/url"
	"time"
)

// Store persists resources, their history and their search index. Implementations live
// below this package (resources/postgres, resources/sqlite) and must make every Write one
// transaction: the current row, the history row and the index rows commit together or not
// at all.
type Store interface {
	// Read returns the current version of a resource, deleted or not.
	// A resource that never existed is a CodeNotFound error.
	Read(ctx context.Context, typ, id string) (*Resource, error)
	// VRead returns one version from the history; CodeNotFound when there is none.
	VRead(ctx context.Context, typ, id string, versionID int64) (*Resource, error)
	// Write locks the resource (typ, id) for the duration of one transaction, calls fn with
	// its current version (nil if it never existed) and stores what fn returns as the new
	// current version, appending it to the history and replacing its index rows. Concurrent
	// Writes of one resource run one after the other. An error from fn aborts the
	// transaction and is returned as is.
	Write(ctx context.Context, typ, id string, fn WriteFunc) (*Resource, error)
	// History lists versions, newest first.
	History(ctx context.Context, q HistoryQuery) (*HistoryResult, error)
	// Search runs a parsed search over live (not deleted) resources.
	Search(ctx context.Context, q *Query) (*SearchResult, error)
	// Include returns the live resources that q's links lead to from q.From, each once,
	// at most q.Limit of them (see IncludeQuery). Those of From may be among them.
	Include(ctx context.Context, q IncludeQuery) ([]*Resource, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Transaction runs fn in one database transaction (conformance F41): every Read,
	// VRead, History, Search, Include and Write made with the context fn receives runs in
	// it, sees its earlier writes, and commits with it when fn returns nil; an error
	// from fn (or from the commit) rolls all of them back and is returned. Writes in a
	// transaction are never batched with other requests' and hold their row locks until
	// it ends. Called with a context already in a transaction, fn joins it.
	Transaction(ctx context.Context, fn func(ctx context.Context) error) error
}

// WriteFunc decides, inside the write transaction, what the new version is. cur is nil
// when the resource never existed. Returning (nil, nil, nil) makes Write a no-op that
// returns cur (used by deletes of already deleted resources).
type WriteFunc func(cur *Resource) (*Resource, *Index, error)

// HistoryQuery selects versions: of one resource (Type and ID), of one type (Type only),
// or of several types (Types, Type empty: system-level history).
type HistoryQuery struct {
	Type string
	ID   string
	// Types are those of a system-level history; OtherTypes, when set, are every other
	// type of the registry (a store may name the fewer of the two, see SystemTypes).
	Types      []string
	OtherTypes *[]string
	Since      time.Time // zero: no lower bound (last_updated >= Since)
	// AtLow and AtHigh (both zero: none) keep the versions current at some instant of
	// [AtLow, AtHigh): written before AtHigh and not replaced by a next version at or
	// before AtLow.
	AtLow, AtHigh time.Time
	Count         int // page size
	Offset        int
	// After, when set, starts the page after this version in the history's order
	// (newest first), whatever was written since: the cursor of the next links.
	After *HistoryCursor
	// Ignored are the parameters a lenient history did not apply; Used those it did,
	// as given, for the links.
	Ignored []Ignored
	Used    url.Values
}

// HistoryCursor is one version's place in a history, newest first: last_updated
// descending, then version descending, then type and id ascending.
type HistoryCursor struct {
	LastUpdated time.Time
	VersionID   int64
	Type, ID    string
}

// HistoryResult is one page of versions and the total number of versions selected.
type HistoryResult struct {
	Entries []*Resource
	Total   int
	// More says that versions follow the page's last one (a next page is not empty).
	More bool
}

// SearchResult is one page of matches. Total is -1 when it was not counted (_total=none).
type SearchResult struct {
	Entries []*Resource
	Total   int
	// Included holds the resources that _include and _revinclude added (Service.Include).
	Included []*Resource
	// IncludesIncomplete says why Included stops short of what was asked ("" when
	// complete): the limit the includes reached.
	IncludesIncomplete string
	// Set is the stored result set the page was read from or started (nil: none, the
	// matches fit one page or the search is not paged stably); its paging links name it.
	Set *ResultSet
}

// Index holds the search index rows of one resource version, extracted from its content
// by the registry's search parameter definitions.
type Index struct {
	Strings    []StringEntry
	Tokens     []TokenEntry
	Dates      []DateEntry
	Numbers    []NumberEntry
	References []ReferenceEntry
	// Text is what _text and _content search (ExtractFullText); empty: no row.
	Text FullText
}

// StringEntry is a string parameter value, normalised by NormalizeString (lower case,
// accents removed).
type StringEntry struct {
	Param string
	Value string
	// Exact is the value as written, for the :exact modifier.
	Exact string
	// Group numbers the element of a composite parameter the value was taken from (1,
	// 2, …; see ComponentParam); 0 for every other row.
	Group int
}

// TokenEntry is a coded value: system may be empty; code is case-sensitive.
type TokenEntry struct {
	Param  string
	System string
	Code   string
	// Group numbers the element of a composite parameter the value was taken from (1,
	// 2, …; see ComponentParam); 0 for every other row.
	Group int
}

// DateEntry is the instant range [Low, High] covered by a date, dateTime, instant or
// Period, at the precision it was written with. Times are UTC.
type DateEntry struct {
	Param string
	Low   time.Time
	High  time.Time
	// Group numbers the element of a composite parameter the value was taken from (1,
	// 2, …; see ComponentParam); 0 for every other row.
	Group int
}

// NumberEntry is a number or a Quantity (with optional system and code).
type NumberEntry struct {
	Param  string
	Value  float64
	System string
	Code   string
	// Group numbers the element of a composite parameter the value was taken from (1,
	// 2, …; see ComponentParam); 0 for every other row.
	Group int
}

// ReferenceEntry is a literal reference split into the target type and id.
type ReferenceEntry struct {
	Param      string
	TargetType string
	TargetID   string
	// Group numbers the element of a composite parameter the value was taken from (1,
	// 2, …; see ComponentParam); 0 for every other row.
	Group int
}
