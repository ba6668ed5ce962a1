package engine

import "context"

// Ping reports whether Redis answers PING. Its error is the client's own,
// not wrapped: it names the address and the cause already, and a readiness
// check shows it as it is. PartitionsNotReady tells which partitions can
// serve.
func (e *Engine) Ping(ctx context.Context) error {
	return e.rdb.Ping(ctx).Err()
}
