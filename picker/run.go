package picker

import (
	"context"

	"github.com/lbkit/lbkit/servicemap"
)

// Run keeps the picker following t until ctx is done, then returns nil. It
// subscribes to t, updates to t's current snapshot, and updates again after
// every change notification, so no change is missed (see
// servicemap.Tracker.Subscribe). Picks may run on other goroutines
// meanwhile.
func (p *Picker) Run(ctx context.Context, t *servicemap.Tracker) error {
	changed, cancel := t.Subscribe()
	defer cancel()
	p.Update(t.Snapshot())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			p.Update(t.Snapshot())
		}
	}
}
