package app

import "github.com/labstack/echo/v4"

// registerDashboard serves the dashboard and the read API for deployments
// and previews.
func (m *Main) registerDashboard(e *echo.Echo) {}
