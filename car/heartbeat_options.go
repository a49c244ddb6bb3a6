package car

import "github.com/tcconcurrency/sdk-go/heartbeat"

// managedHeartbeat says which option of the manager's own stands for each
// heartbeat setting the manager makes itself.
func managedHeartbeat(name string) (instead string) {
	switch name {
	case "WithReconnectWindow":
		return "car.WithReconnectWait"
	case "WithReloadGrace":
		return "car.WithReloadGrace"
	case "WithIdleThreshold":
		return "car.WithIdleThreshold"
	case "OnStream":
		return "car.OnStreamEvent"
	case "OnConnect", "OnDisconnect", "OnResume", "OnIdle", "OnExpire":
		return "car.OnRelease and SessionManager.Snapshot"
	}
	return "the manager's own options (see car.WithHeartbeat)"
}

// refuseManaged fails if an option given through WithHeartbeat sets what
// one of the manager's own heartbeat options (own) sets: the manager's
// would replace it silently.
func refuseManaged(given, own []heartbeat.ServerOption) error {
	for _, g := range given {
		if g == nil {
			continue // heartbeat.NewServer names it
		}
		for _, o := range own {
			if g.String() == o.String() {
				return &ValidationError{
					Service: Service, Action: "NewSessionManager", Field: "WithHeartbeat(heartbeat." + g.String() + ")",
					Rule: "is set by the manager itself and would be replaced; use " + managedHeartbeat(g.String()),
				}
			}
		}
	}
	return nil
}
