// Package replicascale is the benchmark of heartbeat sessions at scale over
// several replica processes that share one Redis: by default 60,000
// sessions, 4 replica processes, 4 client processes, one redis-server, all
// on loopback. It measures what one machine's worth of replicas costs and
// how on time they stay:
//
//   - memory per session per replica: each replica process's resident set
//     (VmRSS) and its Go heap and stacks, after connecting minus before,
//     divided by the sessions connected to it;
//   - Redis memory per session: INFO memory used_memory after minus before,
//     divided by all the sessions;
//   - disconnect-detection p99: clients killed silently (they stop reading,
//     so they send no pong and no frame, while their TCP connection stays
//     open); the time from each one's last frame to OnDisconnect on the
//     replica that held it;
//   - idle-callback error p99: OnIdle's time minus the expected time, the
//     client's activity frame (its send time, in the client process) plus
//     the idle threshold.
//
// It is a Go benchmark (the test binary re-executes itself for each role):
//
//	cd car/redisstore
//	go test -run '^$' -bench ReplicaScale -benchtime 1x ./internal/replicascale          # small mode, seconds
//	go test -run '^$' -bench ReplicaScale -benchtime 1x -timeout 30m ./internal/replicascale \
//	    -args -replicascale.full -replicascale.out results.json -replicascale.md table.md  # 60,000 sessions, a few minutes
//
// .ci/bench runs the full size and puts the table into BENCHMARKS.md; the
// smoke pass of .ci/run and TestSmall run the small mode (400 sessions,
// short timings), so the harness cannot rot. It needs redis-server (the
// Debian package; car/redisstore/internal/redistest starts it on a free
// port, persistence off) and Linux (/proc, 127.x source addresses).
//
// # Processes
//
// One redis-server; R replica processes (default 4), each a
// heartbeat.Server with the Redis session store (redisstore.New(...).Sessions()
// via heartbeat.WithStore) and the same token key (heartbeat.WithTokenKeys),
// mounted on a loopback listener beside a small control API; C client
// processes (default 4, at most 15,000 connections each, so that every
// process stays under this machine's limit of 20,000 open files). A child
// exits when its stdin reaches EOF, so none outlives the benchmark.
//
// The replicas run the heartbeat server only, without a car.SessionManager
// or the CAR reference server: every figure asked for is the heartbeat
// layer's (connections, pings, idle timers, session records in Redis), and
// a manager would add a lease per session (a Redis hash and a CAR
// ApplyConcurrent + CreateSession per user, 60,000 API calls on the
// reference server) that none of these figures measures. The leases' own
// cost is in the Start/release benchmarks of car/redisstore.
//
// Session i is opened on replica (i+1) mod R and its client connects to
// replica i mod R, so every hello is accepted on a replica that did not
// mint its token (the store consumes the token in Redis). Its client lives
// in client process (i div R) mod C, so each client process talks to every
// replica. The clients are lean: one gorilla/websocket connection with
// 256-byte buffers and one goroutine each (its reader, which answers
// pings), speaking tcc.heartbeat.v1 as a browser does: hello, one activity
// frame right after the welcome, then pongs. They are not hbclient: its
// reconnect loop would bring a silenced client back, and the client side is
// not what is measured. Connections come from source addresses
// 127.0.3.1, 127.0.3.2, … (at most 10,000 per address), so that no
// address runs out of ephemeral ports.
//
// # Phases
//
//  1. Start: redis-server, the replicas, the clients; each replica's memory
//     and Redis's used_memory are read before any session exists.
//  2. Connect: in batches, paced at -dial-rate sessions per second (1,000
//     in the full mode), each batch is opened on its replicas and then
//     dialled by its client processes. Each client sends its activity frame
//     right after the welcome, so the idle crossings later come at the same
//     pace, not all at once.
//  3. Memory: once every OnConnect has fired and after a settle time, each
//     replica's memory (after runtime.GC twice and debug.FreeOSMemory) and
//     Redis's used_memory are read again.
//  4. Idle: every session crosses its idle threshold once (150 s in the full
//     mode, after its activity frame). The threshold is chosen so that the
//     first crossing comes after the memory reading; if connecting was too
//     slow for that, the results say so (memory_read_after_first_idle).
//  5. Disconnect: k sessions (10 %, at least 100) are silenced at the same
//     moment. Each one's last frame is when it wrote its last pong (or its
//     activity frame), on the client's clock; the replica's
//     OnDisconnect is on the replica's clock, the same machine's wall
//     clock. disconnect_ms is OnDisconnect − last frame; the server is on
//     time when it is the ping timeout (plus the time to notice).
//
// The full mode runs the heartbeat's default ping interval and timeout (10
// s and 30 s), so disconnect_ms measures the library's defaults; the small
// mode runs 1 s and 4 s.
//
// # Caveats
//
// Every process shares the machine's cores: the clients' work competes
// with the replicas' and Redis's, which makes the latencies pessimistic.
// Other load on the machine moves every figure; the results record the load
// average at the start and the end.
package replicascale
