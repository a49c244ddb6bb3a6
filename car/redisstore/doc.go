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
// project (the CAR project id, or any name unique per deployment) and a
// distinct replica id ([WithReplicaID]; random by default). [Store.Close]
// stops the Store's goroutines; it does not close the client.
//
// The heartbeat sessions ([Store.Sessions], for heartbeat.WithStore) and
// the leases and queue ([Store.Leases], for the SessionManager) are being
// added to this package; until they land, the package provides the module,
// the bus and replica liveness that they are built on.
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
// A replica is alive while its key tcc:{<project>}:alive:<id> exists. The
// Store sets it with a 10 s expiry (PX 10000) once its subscriptions are in
// place, and refreshes it every 3 s. A replica that crashes stops
// refreshing, and within 10 s every other replica sees it dead; Close
// deletes the key at once.
//
// # Logging
//
// [WithLogger] sets a log/slog logger; by default the Store logs nothing.
// Errors talking to Redis are logged at warn level while they last.
package redisstore
