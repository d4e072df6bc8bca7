{{- /*
  What the API pods and the audit checkpoint job share: the ENCLAVE_* settings (names of fields of
  enclave_api.settings.Settings; tests/helm checks that every name is one), the key files and the
  data volume. The keys are mounted from the Secret or, with secrets.kms.secretProviderClass, from
  the Secrets Store CSI driver (the files then come from the KMS).
*/}}

{{- define "enclave.keysDir" -}}/etc/enclave/keys{{- end }}
{{- define "enclave.dataDir" -}}/var/lib/enclave{{- end }}

{{- define "enclave.settingsEnv" -}}
- name: ENCLAVE_MODE
  value: production
- name: ENCLAVE_DATA_DIR
  value: {{ include "enclave.dataDir" . }}
- name: ENCLAVE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
- name: ENCLAVE_TOKEN_PEPPER
  valueFrom:
    secretKeyRef:
      name: {{ include "enclave.keys.secretName" . }}
      key: token-pepper
- name: ENCLAVE_PSEUDONYM_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "enclave.keys.secretName" . }}
      key: pseudonym-key
- name: ENCLAVE_KEK_FILE
  value: {{ include "enclave.keysDir" . }}/kek.json
- name: ENCLAVE_AUDIT_SIGNING_KEY_FILE
  value: {{ include "enclave.keysDir" . }}/audit-signing-key.pem
- name: ENCLAVE_AUDIT_SINK
  value: file
- name: ENCLAVE_AUDIT_SINK_PATH
  value: {{ include "enclave.dataDir" . }}/audit/checkpoints.jsonl
{{- with .Values.api.settings }}
- name: ENCLAVE_SESSION_MAX_HOURS
  value: {{ .sessionMaxHours | quote }}
- name: ENCLAVE_EGRESS_REVIEWS
  value: {{ .egressReviews | quote }}
- name: ENCLAVE_MAX_EPSILON
  value: {{ .maxEpsilon | quote }}
- name: ENCLAVE_MAX_GRANT_DAYS
  value: {{ .maxGrantDays | quote }}
- name: ENCLAVE_TOKEN_TTL_DAYS
  value: {{ .tokenTtlDays | quote }}
- name: ENCLAVE_PII_NER
  value: {{ .piiNer | quote }}
- name: ENCLAVE_LOG_JSON
  value: {{ .logJson | quote }}
{{- end }}
# Python writes caches under HOME; the root filesystem is read-only.
- name: HOME
  value: /tmp
{{- end }}

{{- define "enclave.volumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "enclave.data.claimName" . }}
- name: keys
{{- if .Values.secrets.kms.secretProviderClass }}
  csi:
    driver: secrets-store.csi.k8s.io
    readOnly: true
    volumeAttributes:
      secretProviderClass: {{ .Values.secrets.kms.secretProviderClass }}
{{- else }}
  secret:
    secretName: {{ include "enclave.keys.secretName" . }}
    defaultMode: 0440
    items:
      - key: kek.json
        path: kek.json
      - key: audit-signing-key.pem
        path: audit-signing-key.pem
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end }}

{{- define "enclave.volumeMounts" -}}
- name: data
  mountPath: {{ include "enclave.dataDir" . }}
- name: keys
  mountPath: {{ include "enclave.keysDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{- /* The enclave's containers: non-root (the image's uid 10001), nothing to escalate to. */}}
{{- define "enclave.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "enclave.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "enclave.api.image" -}}
{{- printf "%s:%s" .Values.api.image.repository .Values.api.image.tag }}
{{- end }}
