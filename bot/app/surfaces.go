package app

import "github.com/labstack/echo/v4"

// registerSurfaces serves the chat surfaces' endpoints.
func (m *Main) registerSurfaces(e *echo.Echo) {}
