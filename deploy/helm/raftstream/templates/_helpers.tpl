{{- define "raftstream.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "raftstream.headless" -}}
{{- include "raftstream.fullname" . }}-headless
{{- end -}}

{{- define "raftstream.labels" -}}
app.kubernetes.io/name: raftstream
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "raftstream.selector" -}}
app.kubernetes.io/name: raftstream
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every node's cluster address, `id@pod.headless.namespace.svc:port`; node id = ordinal + 1. */}}
{{- define "raftstream.peers" -}}
{{- $fullname := include "raftstream.fullname" . -}}
{{- $headless := include "raftstream.headless" . -}}
{{- $peers := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $peers = append $peers (printf "%d@%s-%d.%s.%s.svc:%d" (add1 $i) $fullname $i $headless $.Release.Namespace (int $.Values.ports.cluster)) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}
