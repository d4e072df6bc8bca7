{{- /*
  Names and labels. Resource names are fixed ("enclave-api", ...) rather than release-prefixed: the
  JupyterHub values (which are not templated) refer to them, e.g. http://enclave-api:8000. One
  release per namespace.
*/}}

{{- define "enclave.name" -}}enclave{{- end }}

{{- define "enclave.api.fullname" -}}enclave-api{{- end }}
{{- define "enclave.auditCheckpoint.fullname" -}}enclave-audit-checkpoint{{- end }}
{{- define "enclave.sessions.fullname" -}}enclave-sessions{{- end }}
{{- define "enclave.keys.fullname" -}}enclave-keys{{- end }}
{{- define "enclave.data.fullname" -}}enclave-data{{- end }}

{{- /* Labels of every object; pass (dict "root" $ "component" "api"). */}}
{{- define "enclave.labels" -}}
{{ include "enclave.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* Labels that select a component's pods. */}}
{{- define "enclave.selectorLabels" -}}
app.kubernetes.io/name: {{ include "enclave.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- /* The Secret holding the keys: the one given, or the one rendered from secrets.values. */}}
{{- define "enclave.keys.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "enclave.keys.fullname" .) }}
{{- end }}

{{- define "enclave.data.claimName" -}}
{{- .Values.storage.existingClaim | default (include "enclave.data.fullname" .) }}
{{- end }}
