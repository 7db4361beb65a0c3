package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// MaxArchiveBytes bounds a repository archive's download: shipbot reads
// the archive into memory.
const MaxArchiveBytes = 128 << 20

// errTooLarge stops a download past MaxArchiveBytes.
var errTooLarge = errors.New("the archive is larger than the limit")

// limitedBuffer refuses writes past its limit, which ends the download.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, fmt.Errorf("%w (%d bytes)", errTooLarge, b.limit)
	}
	return b.Buffer.Write(p)
}

// Archive downloads the project's repository at sha as a tar.gz
// (GET /projects/:id/repository/archive.tar.gz?sha=). project is the
// project's path with namespace, or its numeric id as a string.
func (c *Client) Archive(ctx context.Context, project, sha string) ([]byte, error) {
	buf := &limitedBuffer{limit: MaxArchiveBytes}
	_, err := c.gl.Repositories.StreamArchive(project, buf, &gl.ArchiveOptions{Format: gl.Ptr("tar.gz"), SHA: gl.Ptr(sha)}, gl.WithContext(ctx))
	if err != nil {
		return nil, wrap(err, "archive of %s at %s", project, sha)
	}
	return buf.Bytes(), nil
}
