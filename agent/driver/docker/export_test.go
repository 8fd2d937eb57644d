package docker

import "context"

// IsActiveEndpoints is isActiveEndpoints, for the tests.
var IsActiveEndpoints = isActiveEndpoints

// StopSlot is stopSlot, for the tests.
func (d *Driver) StopSlot(ctx context.Context) (func(), error) { return d.stopSlot(ctx) }

// StopSlotHold is stopSlotHold, for the tests.
const StopSlotHold = stopSlotHold
