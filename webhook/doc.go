// Package webhook delivers the inventory's events to HTTP endpoints that
// subscribed to them (DESIGN §13, docs/design.md §18).
//
// A Store keeps the subscriptions and the delivery log in PostgreSQL, so
// every worker sees them. A Dispatcher runs the delivery workers: an intake
// per partition reads the partition's event stream through its own consumer
// group (engine.Consumer, group "webhooks"), turns each event into the
// event names it fires (Names: stock_changed, low_stock, out_of_stock,
// back_in_stock, transfer), writes one delivery row per matching
// subscription, and only then acknowledges the entry; a sender per endpoint
// posts the rows, signed (Sign), with retries and exponential backoff for
// MaxAge. Nothing here runs on the hot path: a sale only appends its event
// to the stream, as it always did.
package webhook
