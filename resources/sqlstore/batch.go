package sqlstore

// NextBatch waits for a value from in, then takes along every other one that is ready
// to be received, up to max in all: the writes a store commits together are those that
// arrived while it was busy with the last ones. It appends to batch[:0] and reports
// false, with nothing taken, once stop is closed.
func NextBatch[T any](in <-chan T, stop <-chan struct{}, max int, batch []T) ([]T, bool) {
	batch = batch[:0]
	select {
	case v := <-in:
		batch = append(batch, v)
	case <-stop:
		return batch, false
	}
	for len(batch) < max {
		select {
		case v := <-in:
			batch = append(batch, v)
		default:
			return batch, true
		}
	}
	return batch, true
}
