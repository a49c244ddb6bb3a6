// Package redisstore keeps the state that several backend replicas must
// share — heartbeat sessions, leases and the queue — in Redis, so that any
// replica serves any user with no sticky sessions, and each concurrency is
// released exactly once whichever replica sees the deadline.
//
// It is a module of its own (github.com/tcconcurrency/sdk-go/car/redisstore)
// so that the SDK's main module gains no dependency: only a program that
// runs several replicas downloads go-redis.
//
// # One Store per replica process
//
// Each replica process makes one [Store] with [New], on a
// redis.UniversalClient (a single server, Sentinel or Cluster), and hands it
// to its SessionManager. Every replica of one deployment uses the same
// project (the CAR project id, or any name unique per deployment). Each
// Store is a replica of its own: [WithReplicaID] names it (a pod name), and
// the Store adds a per-process suffix, so a restarted process is never
// taken for its previous life. [Store.Close]
// stops the Store's goroutines; it does not close the client.
//
// The three deployments are tested against real redis-server processes: a
// single server; Sentinel (a failover client, UniversalOptions.MasterName),
// through a failover; and a Cluster (Redis 7.0 or later, for sharded
// pub/sub; a client that routes to primaries only, see "The bus"), also
// while the project's slot moves to another node.
//
// The heartbeat sessions ([Store.Sessions], for heartbeat.WithStore; see
// "Heartbeat sessions") and the leases and queue ([Store.Leases], for the
// SessionManager) are built on the module's bus and replica liveness.
//
// # Keys
//
// Every key of a project starts with tcc:{<project>}: — one Redis Cluster
// hash tag per project, so the multi-key scripts that decide something run
// on one Cluster slot. The project therefore may not contain '{' or '}'.
// Time inside those scripts comes from Redis (TIME), never from a replica's
// clock, so clock skew between replicas changes nothing.
//
// # The bus and replica liveness
//
// Each replica subscribes to its own channel, tcc:{<project>}:node:<id>, and
// to the project-wide channel tcc:{<project>}:all. The channels carry
// wake-ups and hand-offs (a connection replaced elsewhere, a notice for a
// user connected here, a release that frees a place in the queue). Redis
// pub/sub is fire and forget: a message sent while a replica is
// reconnecting to Redis is lost. The state in Redis is always the truth, and
// every decision is taken there; a lost message only delays what a replica's
// own periodic sweep then does.
//
// On a Redis Cluster (a *redis.ClusterClient; Redis 7.0 or later) the bus is
// sharded pub/sub (SSUBSCRIBE, SPUBLISH): the channels share the project's
// hash tag, so every replica subscribes on the primary of the project's
// slot, the node its scripts run on. A plain PUBLISH on a Cluster reaches
// every node's subscribers but counts only those of the node it was sent
// to, and the store reads that count (a replica with no subscriber is gone;
// a notice nobody took is kept for the client's next welcome). For the same
// reason New refuses a cluster client that routes to replicas (ReadOnly,
// RouteByLatency, RouteRandomly): its subscriptions would sit where the
// count does not look. A node that loses the slot (a resharding, or a
// primary demoted by a failover) ends those subscriptions, and go-redis
// does not renew them. On Sentinel the failover client moves its commands
// to the new primary at once, but its subscriptions stay on the old one
// until the Sentinel demotes it and kills its subscribers (20 s after the
// promotion in the runs of TestSentinelBusFollowsAFailover), and a PUBLISH
// to the new primary counts nobody there. So each replica, at every
// liveness refresh, publishes a probe to its own channel (one PUBLISH per
// replica every 3 s), and when no subscriber took it subscribes again, on
// a new connection, to the current primary. Until then (at most about two
// AliveRefresh periods; 2–4 s measured) messages to it are lost, and it is taken
// for gone by a replica that claims one of its sessions (the claimer does
// not wait; the old connection is closed at its owner's next refresh), and
// notices for its users are kept for their clients' next welcome. A false
// alarm (the probe sent while go-redis was reconnecting the subscription
// after a blip) costs one needless resubscription. Sharded and plain
// pub/sub do not reach each other: replicas of a version of this package
// from before sharded pub/sub and of this one must not run side by side on
// one Cluster (each would take the other for gone); upgrade such a
// deployment by stopping the old replicas first (SessionManager.Drain
// keeps every lease; the users resume on the new ones).
//
// A replica is alive while its key tcc:{<project>}:alive:<id> exists. The
// Store sets it with a 10 s expiry (PX 10000) once its subscriptions are in
// place, and refreshes it every 3 s. A replica that crashes stops
// refreshing, and within 10 s every other replica sees it dead; Close
// deletes the key at once.
//
// # Heartbeat sessions
//
// [Store.Sessions] is the heartbeat.Store of this replica: give it to the
// replica's heartbeat.Server with heartbeat.WithStore (the SessionManager
// does so itself), together with the same token keys on every replica
// (heartbeat.WithTokenKeys). The model, the callbacks and what is exactly
// once are in the heartbeat package doc ("Several replicas"); here is how
// Redis holds it.
//
// Each session is a hash tcc:{<project>}:hb:s:<id> (state, the hashes of
// its join and resume nonces, owner replica and connection epoch, its
// timeline, last frame, last activity, idle count, grace end), its kept
// notices a list and a hash beside it, and its next deadline a member of
// the sorted set tcc:{<project>}:hb:due: for a connected session the end
// of its owner lease (last refresh + 10 s), otherwise the earlier of the
// grace end and the next idle threshold. Each heartbeat step is one Lua
// script (Open, Claim, Detach, Refresh, ReportIdle, Touch, Notify, End, and the two
// steps of a sweep), timed by Redis's TIME. A sweep lists the due members
// and then takes them in a second script that checks each is still due,
// so concurrent sweepers never take one deadline twice. Messages to the
// owner replica (replaced, notice, release, touch) go over the bus after
// the script has recorded the decision; a lost message is made up by the
// owner's next refresh (at most 3 s later), which reports a replaced or
// ended session. A notice routed to an owner that nobody subscribes for
// (the replica is gone) is kept for the next connection instead.
//
// Failures. While Redis is unreachable every call returns a
// *heartbeat.StoreError and connected clients stay connected. A gap of
// more than an owner lease between two sweeps means nobody could reach
// Redis; the first sweep after it gives every owner one more lease
// (tcc:{<project>}:hb:hold) so that live connections are refreshed before
// anyone counts them lost. The key tcc:{<project>}:hb:boot marks the data:
// when a refresh finds it gone or changed, Redis lost its data (restarted
// without persistence, or failed over to an empty replica); the refresh
// recreates the sessions of the connections this replica holds and logs at
// error level. Sessions with no connection, and kept notices, are lost
// then; their callbacks never fire.
//
// Failover (Sentinel, or a replica promoted by hand) replicates
// asynchronously: writes acknowledged by the old primary in the last
// moment before it failed can be missing on the new one. For sessions that
// means: a consumed nonce can be valid again (a token used once more, only
// by the client that had it: both hellos are then accepted and the later
// replaces the earlier, with 4004, at the next refresh); a claim can be
// undone (the owner's next refresh reports its connection replaced or the
// session gone, and closes it; the client resumes with its token if the
// nonce survived, else it gets 4003); a deadline already fired can fire
// again, so an OnExpire or OnIdle may repeat once (the SessionManager's
// release claim and generation keep DestroySession to one per lease); and
// a detach can be lost, so the session's grace starts again when its owner
// lease runs out. The package does not issue WAIT: use persistence and
// min-replicas-to-write on the Redis side to narrow the window.
//
// # Leases and the queue
//
// [Store.Leases] is the car.LeaseStore of this replica: give it to the
// replica's SessionManager with car.WithLeaseStore, or give the whole Store
// with car.WithStore (both halves at once). The model and what is exactly
// once are in the car package doc ("Several replicas"); here is how Redis
// holds it.
//
// Each lease is a hash tcc:{<project>}:lease:<user> (generation, state,
// owner, claimer, applied, ticket, release reason, the Start request and
// the last ServerSession), with its hold beside it in
// tcc:{<project>}:lhold:<user>: the replica holding the lease (the
// starter while it starts, the claimer while it releases), SET with PX, so
// a hold ends when Redis expires the key, on Redis's clock. Generations
// come from the counter tcc:{<project>}:lgen; the users with a lease are
// the set tcc:{<project>}:leases. The queue is the sorted set
// tcc:{<project>}:q (user → ticket from the counter tcc:{<project>}:qseq;
// ZADD NX, so a user who comes back keeps its ticket), and its head lock
// tcc:{<project>}:qhead (SET PX, compare-and-delete to give it up).
//
// Each decision is one Lua script over declared keys: create (a new
// generation, queued behind the waiting users or held for its start),
// update (starting, active, queued; fenced by the generation), claim (wins
// when nobody else's hold or claim is live; renews the claimer's own;
// takes a lease out of the queue), finish (only the current claimer of
// that generation deletes the lease), lock head. A claim by replica A that
// runs out while A is dead or stalled lets replica B claim the same
// generation: B repeats DestroySession (harmless: the session is already
// gone or going), finishes and runs OnRelease; A's finish then fails and A
// forgets the lease without a callback. Lease events (released, admitted,
// queue) are broadcast on the bus after the script; a lost one only delays
// a wake-up that the queue runner's poll or the claim's retry makes up.
//
// Failures. While Redis is unreachable every call returns a
// *car.StoreError: Start fails fast, and the manager retries releases
// until Redis is back.
//
// Data loss (Redis restarted without persistence, or failed over to a
// replica that had none of the data) is detected by a mark,
// tcc:{<project>}:lboot ("<epoch>:<random>"), that each replica learns
// before its first lease script. Every lease script that decides from a
// record (create, update, claim, finish, get, lock head) first compares
// the mark with the one its replica knows, in the same atomic step: when
// it is gone or changed, the script changes nothing and the replica
// rebuilds before it answers anything, so that a lease Redis forgot is
// never taken for one that ended. The queue runner locks the head every
// poll interval (1 s by default), so every replica finds the loss within
// one poll even when nothing else happens. The replica then logs once at
// error level (with the counts) and writes back, in chunks of 200 leases
// per script, what its SessionManager has on its books
// (car.LeaseRebuilder): its active leases (generation, Start request,
// ServerSession, applied), its queued users with their tickets, in queue
// order (a user whose ticket it does not know gets a new one, behind
// them), the leases it is starting (held by it again for the start's
// hold), and the releases it carries out (claimed by it again for the
// claim TTL, so they go on and finish exactly once). A user who already
// has a lease in Redis again (another replica wrote it back first, or a
// Start made it since the loss) is left as it is. The first replica to
// rebuild sets the next epoch's mark and moves the generation counter to
// at least epoch << 32 and past every generation it holds; every other
// replica that knew the old mark rebuilds too, in turn, and moves the
// counter past its own: no generation is handed out twice, whichever
// replica started it, provided fewer than 2^32 leases are made between two
// losses. For 5 minutes after a rebuild, a finished lease leaves its
// generation behind (tcc:{<project>}:lend:<user>), so that a replica that
// rebuilds after that release does not write the lease back.
//
// Lost in a data loss: the leases that no live replica has on its books
// (those of a replica that died before the loss, or whose release it
// carried out when it died), which nobody then releases: CAR's own
// reconnect wait frees their concurrencies; the queued users of such a
// replica (their clients, back with their resume tokens, get 4003 and
// Start again, at the end of the queue); and, with the heartbeat sessions
// (see "Heartbeat sessions"), the grace and idle deadlines of every user
// not connected at that moment: such a user's lease is written back, but
// nothing releases it until the user's next Stop or Start (which reattaches
// it), or Shutdown's release-all; CAR frees the concurrency after its own
// reconnect wait. A replica started after the loss and before the others
// found it (at most one poll interval) sets a mark of epoch 0, and the
// leases it creates meanwhile can share a generation with a lease written
// back later; a lease finished just before the loss, on a replica whose
// books still had it when they were read, can be written back (a Stop or
// Start of the user then finds it, and DestroySession is called again,
// harmless).
//
// A failover (Sentinel, or a replica promoted by hand) replicates
// asynchronously: the last writes the old primary acknowledged can be
// missing on the new one, while the mark, written long before, survives.
// So a failover is not taken for a data loss: a claim for a generation
// past the counter (the counter's last increments were lost) is reported
// as lost, the claimer releases the lease from what it knows
// (DestroySession, OnRelease) and moves the counter past that generation
// so that none is handed out twice; a lease created in the lost moment is
// gone, and its replica forgets it at its next step (its client then gets
// 4003, and CAR's reconnect wait frees the concurrency); a claim that
// vanishes lets another replica claim the same generation (DestroySession
// twice, harmless); a finished lease that comes back is claimed again and
// found already destroyed; a ticket or a queue departure can be lost, so
// the queue may hold a user who left (admitted, then released when its
// heartbeat session's grace ends; if that session is gone too, left to
// CAR's own reconnect wait, since no client ever connects) or miss one who
// joined (its next Start joins again, at the end). A promoted replica that
// had nothing (the mark gone too) is a data loss, rebuilt as above. The
// package does not issue WAIT: use persistence (appendonly) and
// min-replicas-to-write on the Redis side to narrow the window.
//
// # Logging
//
// [WithLogger] sets a log/slog logger; by default the Store logs nothing.
// Errors talking to Redis are logged at warn level while they last.
package redisstore
