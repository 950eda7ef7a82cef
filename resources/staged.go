package resources

import "context"

// Staged is the first version of a new resource, checked and built before the
// transaction that stores it (StageCreate, WriteStaged).
type Staged struct {
	res *Resource
	idx *Index
}

// StageCreate checks doc as Update checks a create of typ/id and builds the version
// it stores, outside any transaction: fhirbox import builds the versions of one batch
// while the store writes the one before (on SQLite all of a transaction's work runs on
// its one writer, building the versions included). It returns nil and no error for a
// type whose writes must be built inside their transaction, seeing what is stored (a
// type with an Amender): such a document is left as it was, for Update.
//
// The version's meta.lastUpdated is the time it was staged, a moment before its commit,
// as any write's is the time it was built.
func (s *Service) StageCreate(ctx context.Context, typ, id string, doc map[string]any) (*Staged, error) {
	s.mu.RLock()
	amended := len(s.amenders[typ]) > 0
	s.mu.RUnlock()
	if amended {
		return nil, nil
	}
	td, err := s.checkPut(ctx, typ, id, doc)
	if err != nil {
		return nil, err
	}
	if err := s.seal(ctx, td, doc); err != nil {
		return nil, err
	}
	res, idx, err := s.reachedVersion(ctx, typ, id, nil, doc)
	if err != nil {
		return nil, err
	}
	return &Staged{res: res, idx: idx}, nil
}

// WriteStaged stores st, as Update would have stored the create it was staged from.
// The id must have no version at all, deleted or not (a caller that found none passes
// ctx WithFreshID): one that has is a CodeConflict error, and the resource must be
// staged again, or updated.
func (s *Service) WriteStaged(ctx context.Context, st *Staged) (*Resource, error) {
	res, err := s.store.Write(ctx, st.res.Type, st.res.ID, func(cur *Resource) (*Resource, *Index, error) {
		if cur != nil {
			return nil, nil, Errorf(CodeConflict, "%s/%s was written since it was staged", st.res.Type, st.res.ID)
		}
		return st.res, st.idx, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterWrite(ctx, nil, res)
	return res, nil
}
