package gitlab

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// EnsureEnvironment returns the id of the project's environment with exactly
// this name, creating it if needed and setting its external URL if it differs;
// an empty externalURL leaves the URL alone. A stopped environment is
// returned as is: its next successful deployment makes GitLab start it again.
func (c *Client) EnsureEnvironment(ctx context.Context, projectID int64, name, externalURL string) (int64, error) {
	env, err := c.findEnvironment(ctx, projectID, name)
	if err != nil {
		return 0, wrap(err, "find environment %q in project %d", name, projectID)
	}
	if env == nil {
		env, err = c.createEnvironment(ctx, projectID, name, externalURL)
		if err != nil {
			return 0, wrap(err, "create environment %q in project %d", name, projectID)
		}
	}
	if externalURL != "" && env.ExternalURL != externalURL {
		_, _, err := c.gl.Environments.EditEnvironment(projectID, env.ID,
			&gl.EditEnvironmentOptions{ExternalURL: gl.Ptr(externalURL)}, gl.WithContext(ctx))
		if err != nil {
			return 0, wrap(err, "set external URL of environment %q (%d) in project %d", name, env.ID, projectID)
		}
	}
	return env.ID, nil
}

func (c *Client) findEnvironment(ctx context.Context, projectID int64, name string) (*gl.Environment, error) {
	envs, _, err := c.gl.Environments.ListEnvironments(projectID,
		&gl.ListEnvironmentsOptions{Name: gl.Ptr(name)}, gl.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	for _, e := range envs {
		if e.Name == name {
			return e, nil
		}
	}
	return nil, nil
}

// createEnvironment creates the environment; if another shipbot replica won
// the race, GitLab says the name is taken and the winner's is returned.
func (c *Client) createEnvironment(ctx context.Context, projectID int64, name, externalURL string) (*gl.Environment, error) {
	opt := &gl.CreateEnvironmentOptions{Name: gl.Ptr(name)}
	if externalURL != "" {
		opt.ExternalURL = gl.Ptr(externalURL)
	}
	env, _, err := c.gl.Environments.CreateEnvironment(projectID, opt, gl.WithContext(ctx))
	if err == nil {
		return env, nil
	}
	if !gl.HasStatusCode(err, http.StatusBadRequest) {
		return nil, err
	}
	if existing, ferr := c.findEnvironment(ctx, projectID, name); ferr == nil && existing != nil {
		return existing, nil
	}
	return nil, err
}

// StopEnvironment stops an environment; stopping a stopped one is fine.
func (c *Client) StopEnvironment(ctx context.Context, projectID, envID int64) error {
	_, _, err := c.gl.Environments.StopEnvironment(projectID, envID,
		&gl.StopEnvironmentOptions{}, gl.WithContext(ctx))
	if err != nil {
		return wrap(err, "stop environment %d in project %d", envID, projectID)
	}
	return nil
}

// CreateDeployment records a deployment, creating its environment if it does
// not exist yet. GitLab returns the environment's last deployment instead of a
// new one when ref, tag, SHA and status are all the same.
func (c *Client) CreateDeployment(ctx context.Context, projectID int64, d Deployment) (int64, error) {
	status := d.Status
	if status == "" {
		status = DeploymentRunning
	}
	dep, _, err := c.gl.Deployments.CreateProjectDeployment(projectID, &gl.CreateProjectDeploymentOptions{
		Environment: gl.Ptr(d.Environment),
		Ref:         gl.Ptr(d.Ref),
		SHA:         gl.Ptr(d.SHA),
		Tag:         gl.Ptr(d.Tag),
		Status:      gl.Ptr(gl.DeploymentStatusValue(status)),
	}, gl.WithContext(ctx))
	if err != nil {
		return 0, wrap(err, "create deployment of %s to %q in project %d", d.SHA, d.Environment, projectID)
	}
	return dep.ID, nil
}

// UpdateDeployment moves a deployment to status. Setting the status it
// already has is not an error, so a replayed step stays harmless.
func (c *Client) UpdateDeployment(ctx context.Context, projectID, deploymentID int64, status string) error {
	_, _, err := c.gl.Deployments.UpdateProjectDeployment(projectID, deploymentID,
		&gl.UpdateProjectDeploymentOptions{Status: gl.Ptr(gl.DeploymentStatusValue(status))}, gl.WithContext(ctx))
	if err == nil {
		return nil
	}
	// GitLab's state machine refuses success -> success with a 400.
	if gl.HasStatusCode(err, http.StatusBadRequest) {
		dep, _, gerr := c.gl.Deployments.GetProjectDeployment(projectID, deploymentID, gl.WithContext(ctx))
		if gerr == nil && dep.Status == status {
			return nil
		}
	}
	return wrap(err, "set deployment %d in project %d to %s", deploymentID, projectID, status)
}

// sameState matches GitLab's refusal to move a commit status to the state it
// is in, e.g. "Cannot transition status via :run from :running".
var sameState = regexp.MustCompile(`Cannot transition status via :\w+ from :(\w+)`)

// SetCommitStatus sets the state of the external status called name on a
// commit (GitLab calls name "default" when it is empty). Setting the state
// the status already has is not an error, but GitLab then keeps the old
// description and target URL: only a change of state carries new ones.
func (c *Client) SetCommitStatus(ctx context.Context, projectID int64, sha, name, state, targetURL, description string) error {
	opt := &gl.SetCommitStatusOptions{State: gl.BuildStateValue(state)}
	if name != "" {
		opt.Name = gl.Ptr(name)
	}
	if targetURL != "" {
		opt.TargetURL = gl.Ptr(targetURL)
	}
	if description != "" {
		opt.Description = gl.Ptr(description)
	}
	_, _, err := c.gl.Commits.SetCommitStatus(projectID, sha, opt, gl.WithContext(ctx))
	if err == nil {
		return nil
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusBadRequest {
		if m := sameState.FindStringSubmatch(er.Message); m != nil && m[1] == state {
			return nil
		}
	}
	return wrap(err, "set status %q of commit %s in project %d to %s", name, sha, projectID, state)
}
