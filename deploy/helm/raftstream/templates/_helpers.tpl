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

{{/*
Shell that sets ADVERTISE for the pod running it: its headless DNS name, or with external access
its outside address (`external.hosts[i]`, or the single `external.hosts[0]` for every pod; port
`external.nodePortBase + i` for NodePort, the Kafka port for LoadBalancer).
*/}}
{{- define "raftstream.advertiseScript" -}}
{{- if .Values.external.enabled -}}
{{- $hosts := .Values.external.hosts -}}
{{- if and (gt (len $hosts) 1) (ne (len $hosts) (int .Values.replicas)) -}}
{{- fail "external.hosts: give one host for every pod, or a single host for all" -}}
{{- end -}}
case ${POD_NAME##*-} in
{{- range $i := until (int .Values.replicas) }}
{{- $host := index $hosts 0 }}
{{- if gt (len $hosts) 1 }}{{ $host = index $hosts $i }}{{ end }}
{{- $port := eq $.Values.external.type "NodePort" | ternary (add $.Values.external.nodePortBase $i) $.Values.ports.kafka }} {{ $i }}) ADVERTISE={{ $host }}:{{ $port }} ;;
{{- end }} *) echo "unexpected pod name ${POD_NAME}" >&2; exit 1 ;; esac;
{{- else -}}
ADVERTISE=${POD_NAME}.{{ include "raftstream.headless" . }}.${POD_NAMESPACE}.svc:{{ .Values.ports.kafka }};
{{- end -}}
{{- end -}}
