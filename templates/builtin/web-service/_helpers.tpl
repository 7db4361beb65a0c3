{{- /* Metadata shared by every web-service object; Render adds the namespace. */ -}}
{{- define "web-service.metadata" -}}
name: {{ .App }}
labels:
  {{- toYaml .ObjectLabels | nindent 2 }}
{{- with .Annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
