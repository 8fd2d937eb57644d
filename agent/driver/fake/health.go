package fake

import (
	"context"

	"github.com/flotilla-org/flotilla/agent/driver"
)

var _ driver.HealthChecker = (*Driver)(nil)

// Health implements driver.HealthChecker: a task whose spec has a check
// with a command is "starting" until the test says otherwise with
// SetHealth; any other task has no health.
func (d *Driver) Health(_ context.Context, h driver.Handle) (driver.Health, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.lookup(h)
	if err != nil {
		return driver.Health{}, err
	}
	return t.health, nil
}

// SetHealth sets what Health reports for a task (as if its check had run).
// NotFound if there is no such task.
func (d *Driver) SetHealth(taskID string, h driver.Health) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.lookup(driver.Handle{ID: taskID})
	if err != nil {
		return err
	}
	t.health = h
	return nil
}
