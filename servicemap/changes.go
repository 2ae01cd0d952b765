package servicemap

import (
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// ChangeCounts counts the events a Tracker took in that changed what it
// holds: Service and EndpointSlice additions, updates and deletions. A
// data-plane loop reads them before each snapshot it syncs; the difference
// with the current counts is what is still pending (kube-proxy's
// sync_proxy_rules_{service,endpoint}_changes_{pending,total}).
type ChangeCounts struct {
	Services, EndpointSlices uint64
}

// Sub returns c - d, field by field.
func (c ChangeCounts) Sub(d ChangeCounts) ChangeCounts {
	return ChangeCounts{Services: c.Services - d.Services, EndpointSlices: c.EndpointSlices - d.EndpointSlices}
}

// ChangeCounts returns the Tracker's counts so far.
func (t *Tracker) ChangeCounts() ChangeCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts
}

// AnnotationLastChangeTriggerTime is set by the EndpointSlice controller to
// when the change the slice reflects (a Pod or Service change) happened.
const AnnotationLastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"

// maxTriggers bounds the trigger times a Tracker keeps for a loop that
// never asks for them.
const maxTriggers = 4096

// trigger is the last-change-trigger-time of the EndpointSlice change
// counted as number seq.
type trigger struct {
	seq uint64
	at  time.Time
}

// noteTrigger records es's trigger time for the slice change just counted.
func (t *Tracker) noteTrigger(es *discoveryv1.EndpointSlice) {
	v, ok := es.Annotations[AnnotationLastChangeTriggerTime]
	if !ok {
		return
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return
	}
	if len(t.triggers) == maxTriggers {
		// Drop the older half at once: one copy per maxTriggers/2 events,
		// not one per event.
		t.triggers = t.triggers[:copy(t.triggers, t.triggers[maxTriggers/2:])]
	}
	t.triggers = append(t.triggers, trigger{seq: t.counts.EndpointSlices, at: at})
}

// TriggerTimes returns the last-change-trigger-times of the EndpointSlice
// changes counted after ChangeCounts.EndpointSlices was after and up to
// upTo: what a sync of a snapshot taken at upTo programmed, for a network
// programming latency. At least the last 2048 changes' times are kept;
// older ones may be gone.
func (t *Tracker) TriggerTimes(after, upTo uint64) []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Time
	for _, tr := range t.triggers {
		if tr.seq > after && tr.seq <= upTo {
			out = append(out, tr.at)
		}
	}
	return out
}
