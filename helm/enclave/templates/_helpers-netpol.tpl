{{- /*
  NetworkPolicy peers. A peer without namespaceSelector is a pod of this namespace only. The hub
  and proxy pods are the JupyterHub chart's (its legacy labels component/release, which KubeSpawner
  also puts on user pods).
*/}}

{{- define "enclave.netpol.hubPeer" -}}
podSelector:
  matchLabels:
    component: hub
    release: {{ .Release.Name }}
{{- end }}

{{- define "enclave.netpol.proxyPeer" -}}
podSelector:
  matchLabels:
    component: proxy
    release: {{ .Release.Name }}
{{- end }}

{{- define "enclave.netpol.userPodPeer" -}}
podSelector:
  matchLabels:
    component: singleuser-server
    release: {{ .Release.Name }}
{{- end }}

{{- define "enclave.netpol.apiPeer" -}}
podSelector:
  matchLabels:
    {{- include "enclave.selectorLabels" (dict "root" . "component" "api") | nindent 4 }}
{{- end }}

{{- /* Cluster DNS, for the enclave's own pods (never for user pods). */}}
{{- define "enclave.netpol.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{- /* PostgreSQL, wherever it runs (external by default: its address is not known here). */}}
{{- define "enclave.netpol.databaseEgress" -}}
- ports:
    - port: {{ .Values.database.port }}
      protocol: TCP
{{- end }}
