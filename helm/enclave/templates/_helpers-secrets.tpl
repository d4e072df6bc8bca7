{{- /*
  Secrets have no defaults (DESIGN.md §3.7). These helpers fail the render, with what to set, when a
  required reference is missing, so a release can never start on made-up keys.
*/}}

{{- /* True when every key is given inline (secrets.values), which renders the enclave-keys Secret. */}}
{{- define "enclave.keys.inline" -}}
{{- with .Values.secrets.values }}
{{- if and .tokenPepper .pseudonymKey .kek .auditSigningKey }}true{{ end }}
{{- end }}
{{- end }}

{{- define "enclave.checkRequired" -}}
{{- if not .Values.database.existingSecret }}
{{- fail "database.existingSecret is required: the name of a Secret whose key database.urlKey (default \"url\") holds the PostgreSQL URL, postgresql://user:password@host:5432/enclave" }}
{{- end }}
{{- $inline := .Values.secrets.values }}
{{- $anyInline := or $inline.tokenPepper $inline.pseudonymKey $inline.kek $inline.auditSigningKey }}
{{- if and .Values.secrets.existingSecret $anyInline }}
{{- fail "set either secrets.existingSecret or secrets.values, not both" }}
{{- end }}
{{- if and (not .Values.secrets.existingSecret) (not (include "enclave.keys.inline" .)) }}
{{- fail "secrets.existingSecret is required: the name of a Secret with the keys token-pepper, pseudonym-key, kek.json and audit-signing-key.pem (or pass all four as secrets.values.* with --set-file)" }}
{{- end }}
{{- if and (gt (int .Values.api.replicas) 1) (not .Values.storage.existingClaim) (not (has "ReadWriteMany" .Values.storage.accessModes)) }}
{{- fail "storage.accessModes must include ReadWriteMany when api.replicas > 1 (the replicas share the dataset store), or give storage.existingClaim" }}
{{- end }}
{{- end }}
