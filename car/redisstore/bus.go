package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// message is what replicas send each other over the bus. Kind selects the
// handler; the other fields are for the handler to read as its kind
// defines them.
type message struct {
	Kind    string `json:"k"`
	From    string `json:"f,omitempty"` // the sending replica, set by publish and broadcast
	User    string `json:"u,omitempty"`
	Session string `json:"s,omitempty"`
	Gen     uint64 `json:"g,omitempty"`
	Text    string `json:"t,omitempty"`
	Data    []byte `json:"d,omitempty"`
	Age     int64  `json:"a,omitempty"` // milliseconds
}

// maxMessage bounds a message on the bus; a longer payload is refused by the
// sender and dropped by the receiver.
const maxMessage = 1 << 20

func encodeMessage(m message) ([]byte, error) {
	if m.Kind == "" {
		return nil, errors.New("redisstore: bus message without a kind")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("redisstore: encoding a bus message: %w", err)
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("redisstore: bus message of %d bytes, longer than %d", len(b), maxMessage)
	}
	return b, nil
}

func decodeMessage(p string) (message, error) {
	var m message
	if len(p) > maxMessage {
		return m, fmt.Errorf("redisstore: bus message of %d bytes, longer than %d", len(p), maxMessage)
	}
	if err := json.Unmarshal([]byte(p), &m); err != nil {
		return message{}, fmt.Errorf("redisstore: decoding a bus message: %w", err)
	}
	if m.Kind == "" {
		return message{}, errors.New("redisstore: bus message without a kind")
	}
	return m, nil
}

// publish sends msg to one replica's channel. It returns once Redis has
// taken the message; nil does not mean the replica got it (it may be dead
// or reconnecting). The decision the message announces must already be
// recorded in Redis.
func (s *Store) publish(ctx context.Context, replica string, msg message) error {
	return s.send(ctx, s.keys.node(replica), msg)
}

// broadcast sends msg to every replica of the project, this one included.
func (s *Store) broadcast(ctx context.Context, msg message) error {
	return s.send(ctx, s.keys.all(), msg)
}

func (s *Store) send(ctx context.Context, channel string, msg message) error {
	msg.From = s.replica
	b, err := encodeMessage(msg)
	if err != nil {
		return err
	}
	if _, err := s.publishRaw(ctx, channel, b); err != nil {
		return fmt.Errorf("redisstore: publishing %s: %w", msg.Kind, err)
	}
	return nil
}

// publishRaw publishes b on channel and returns how many subscribers got
// it: PUBLISH, or on a Cluster SPUBLISH, whose count covers every
// subscriber of the project's channels (they all sit on the slot's primary),
// where a PUBLISH counts only the subscribers of the node it was sent to.
func (s *Store) publishRaw(ctx context.Context, channel string, b []byte) (int64, error) {
	if s.sharded {
		return s.client.SPublish(ctx, channel, b).Result()
	}
	return s.client.Publish(ctx, channel, b).Result()
}

// handle registers f for the messages of one kind, replacing an earlier
// handler of that kind. f runs on the Store's bus goroutine, one message at
// a time in the order received: it must not block (hand slow work to a
// goroutine of your own) and must not call handle.
func (s *Store) handle(kind string, f func(message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.handlers, kind)
		return
	}
	s.handlers[kind] = f
}

// alive reports whether a replica's liveness key exists: it refreshed it in
// the last AliveTTL.
func (s *Store) alive(ctx context.Context, replica string) (bool, error) {
	n, err := s.client.Exists(ctx, s.keys.alive(replica)).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: liveness of replica %s: %w", replica, err)
	}
	return n == 1, nil
}

// kindProbe is the message a replica sends its own channel to check that
// it is still subscribed (see checkSubscribed); it is dropped on receipt.
const kindProbe = "bus.probe"

// run is the Store's bus goroutine: it subscribes, sets the liveness key,
// then dispatches messages and refreshes the key until Close. It subscribes
// again when it finds its subscription gone.
func (s *Store) run() {
	defer s.wg.Done()
	for {
		ps := s.listen()
		if ps == nil {
			return // closed
		}
		lost := s.serve(ps)
		_ = ps.Close()
		if !lost {
			return
		}
		s.logger.Warn("redisstore: the bus subscription was lost (the project's Cluster slot moved, or a failover left it on the old primary); subscribing again")
	}
}

// listen makes a PubSub and subscribes it, retrying (each time on a new
// PubSub, so on a new connection) until it succeeds; nil once the Store is
// closed.
func (s *Store) listen() *redis.PubSub {
	wait := 50 * time.Millisecond
	for {
		ps := s.newPubSub()
		if ps == nil {
			return nil
		}
		err := s.subscribe(ps)
		if err == nil {
			return ps
		}
		_ = ps.Close()
		if s.ctx.Err() != nil {
			return nil
		}
		if cc, ok := s.client.(*redis.ClusterClient); ok && isMoved(err) {
			// The slot moved and the client's map is behind: ask for
			// a reload (it runs in the background, so the next try may
			// still meet the old node; the retries cover that).
			cc.ReloadState(s.ctx)
		}
		s.logger.Warn("redisstore: subscribing to the bus", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func isMoved(err error) bool {
	_, moved := redis.IsMovedError(err)
	return moved
}

// newPubSub makes a PubSub with no channel yet, so no connection yet (on a
// Cluster, the connection then goes to the primary of the channels' slot),
// and records it for Close; nil once the Store is closed.
func (s *Store) newPubSub() *redis.PubSub {
	var ps *redis.PubSub
	if s.sharded {
		ps = s.client.SSubscribe(s.ctx)
	} else {
		ps = s.client.Subscribe(s.ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ps.Close()
		return nil
	}
	s.pubsub = ps // for Close to unblock a Receive
	return ps
}

// serve dispatches ps's messages and refreshes the liveness key until Close
// (false) or until the subscription is found gone (true).
func (s *Store) serve(ps *redis.PubSub) (lost bool) {
	// Read the subscription before anything else waits on Redis: a
	// subscriber that reads nothing stalls Redis's writes to it (miniredis
	// over a pipe stalls entirely).
	ch := ps.Channel(redis.WithChannelSize(1024))
	s.refresh()
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}

	tick := time.NewTicker(s.aliveRefresh)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return false
		case m, ok := <-ch:
			if !ok {
				return false
			}
			s.dispatch(m.Payload)
		case <-tick.C:
			s.refresh()
			if !s.checkSubscribed() {
				// Redis counted what is already buffered as
				// delivered: dispatch it before letting go.
				for {
					select {
					case m, ok := <-ch:
						if !ok {
							return true
						}
						s.dispatch(m.Payload)
					default:
						return true
					}
				}
			}
		}
	}
}

// checkSubscribed reports false when a probe to this replica's own channel
// reaches no subscriber. On a Cluster, a node that loses the project's slot
// (resharding, or a primary demoted by a failover) ends the slot's sharded
// subscriptions (sunsubscribe), and go-redis does not subscribe again by
// itself. On Sentinel, go-redis's failover client moves its commands to the
// new primary at once but leaves its subscriptions on the old one until
// the Sentinel demotes it and kills its subscribers, which can take tens
// of seconds. Nothing else would tell. An error (Redis unreachable) is not
// taken for a loss: go-redis reconnects and resubscribes then.
func (s *Store) checkSubscribed() bool {
	b, err := encodeMessage(message{Kind: kindProbe, From: s.replica})
	if err != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	n, err := s.publishRaw(ctx, s.keys.node(s.replica), b)
	return err != nil || n > 0
}

// subscribe subscribes to this replica's channel and the project's, and
// waits for Redis to confirm both.
func (s *Store) subscribe(ps *redis.PubSub) error {
	node, all := s.keys.node(s.replica), s.keys.all()
	subscribe, kind := ps.Subscribe, "subscribe"
	if s.sharded {
		subscribe, kind = ps.SSubscribe, "ssubscribe"
	}
	if err := subscribe(s.ctx, node, all); err != nil {
		return err
	}
	seen := map[string]bool{}
	for !seen[node] || !seen[all] {
		v, err := ps.ReceiveTimeout(s.ctx, 5*time.Second)
		if err != nil {
			return err
		}
		if sub, ok := v.(*redis.Subscription); ok && sub.Kind == kind {
			seen[sub.Channel] = true
		}
	}
	return nil
}

func (s *Store) dispatch(payload string) {
	m, err := decodeMessage(payload)
	if err != nil {
		s.logger.Warn("redisstore: dropped a bus message", "err", err)
		return
	}
	if m.Kind == kindProbe {
		return
	}
	s.mu.Lock()
	f := s.handlers[m.Kind]
	s.mu.Unlock()
	if f == nil {
		s.logger.Debug("redisstore: bus message of a kind nobody handles", "kind", m.Kind, "from", m.From)
		return
	}
	f(m)
}

// refresh sets this replica's liveness key for aliveTTL.
func (s *Store) refresh() {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	err := s.client.Do(ctx, "SET", s.keys.alive(s.replica), s.replica, "PX", s.aliveTTL.Milliseconds()).Err()
	cancel()
	if err != nil && s.ctx.Err() == nil {
		s.logger.Warn("redisstore: refreshing the liveness key", "err", err)
	}
	if s.onRefresh != nil {
		s.onRefresh(err)
	}
}
