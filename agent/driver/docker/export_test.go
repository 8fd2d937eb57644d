package docker

// IsActiveEndpoints is isActiveEndpoints, for the tests.
var IsActiveEndpoints = isActiveEndpoints
