package servicemap

import "sync"

// Subscribe returns a new channel that receives a value after every change
// to what the next Snapshot will hold, and a function that ends the
// subscription. Every subscriber has its own channel, so readers (a Runner,
// a health-check server, a picker, a metrics exporter) never take
// notifications from one another.
//
// The channel has a buffer of one and the Tracker never waits for it:
// changes made while a value is still unread are coalesced into that value,
// and a subscriber that does not read never blocks the Tracker or the other
// subscribers. The way to miss nothing: subscribe, then take a Snapshot,
// then take a new Snapshot after each value received. A value is sent only
// for changes made after Subscribe returned; none is sent to start with.
//
// The returned function removes the subscription and closes the channel
// (so a range over it ends); calling it again does nothing.
func (t *Tracker) Subscribe() (<-chan struct{}, func()) {
	return t.subs.add()
}

// subscribers are the channels of a Tracker's subscriptions. The zero value
// has none. Its lock is separate from the Tracker's, and notify is called
// with the Tracker's lock held: Subscribe and unsubscribing never take the
// Tracker's lock, so the order is always Tracker, then subscribers.
type subscribers struct {
	mu   sync.RWMutex
	next uint64
	chs  map[uint64]chan struct{}
}

func (s *subscribers) add() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.chs == nil {
		s.chs = map[uint64]chan struct{}{}
	}
	id := s.next
	s.next++
	s.chs[id] = ch
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.chs, id)
			s.mu.Unlock()
			close(ch) // no send can follow: notify holds the read lock while sending
		})
	}
}

// notify wakes every subscriber without waiting for any: a channel that
// already holds a value already says "changed".
func (s *subscribers) notify() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, ch := range s.chs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
