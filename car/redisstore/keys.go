package redisstore

// keys builds the names of a project's Redis keys and channels. Every name
// starts with tcc:{<project>}: so that all of them share one Cluster hash
// slot, and a script may touch any set of them.
type keys struct {
	prefix string // "tcc:{<project>}:"
}

func newKeys(project string) keys {
	return keys{prefix: "tcc:{" + project + "}:"}
}

// key returns prefix + the parts joined with ':'.
func (k keys) key(parts ...string) string {
	n := len(k.prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, k.prefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	return string(b)
}

// node is the pub/sub channel of one replica.
func (k keys) node(replica string) string { return k.key("node", replica) }

// all is the project-wide pub/sub channel.
func (k keys) all() string { return k.key("all") }

// alive is the liveness key of one replica (SET PX, refreshed by it).
func (k keys) alive(replica string) string { return k.key("alive", replica) }
