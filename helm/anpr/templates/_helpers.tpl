{{/* Names */}}
{{- define "anpr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "anpr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<component>; call with (list $ "ingest"). */}}
{{- define "anpr.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "anpr.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "anpr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "anpr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels; the component ones take (list $ "ingest"). */}}
{{- define "anpr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "anpr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: anpr
{{- end -}}

{{- define "anpr.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "anpr.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "anpr.componentLabels" -}}
{{ include "anpr.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "anpr.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A string as one single-quoted shell word. */}}
{{- define "anpr.shquote" -}}
{{- printf "'%s'" (replace "'" "'\\''" (toString .)) -}}
{{- end -}}

{{/* The NATS URL every service gets. */}}
{{- define "anpr.natsUrl" -}}
{{- if .Values.natsClient.url -}}
{{- .Values.natsClient.url -}}
{{- else if .Values.nats.enabled -}}
{{- /* The NATS chart's own naming (its nats.fullname helper). */ -}}
{{- $natsName := default "nats" .Values.nats.nameOverride -}}
{{- if .Values.nats.fullnameOverride -}}
{{- $natsName = .Values.nats.fullnameOverride -}}
{{- else if contains $natsName .Release.Name -}}
{{- $natsName = .Release.Name -}}
{{- else -}}
{{- $natsName = printf "%s-%s" .Release.Name $natsName -}}
{{- end -}}
{{- printf "nats://%s:4222" ($natsName | trunc 63 | trimSuffix "-") -}}
{{- else -}}
nats://nats:4222
{{- end -}}
{{- end -}}

{{- define "anpr.configUrl" -}}
{{- printf "http://%s:%v" (include "anpr.componentName" (list . "config")) .Values.configService.service.grpcPort -}}
{{- end -}}

{{/* Refuses values that cannot work, with the value to fix. */}}
{{- define "anpr.validate" -}}
{{- $auth := .Values.natsClient.auth -}}
{{- if not (has $auth.mode (list "none" "creds" "userPassword" "token")) -}}
{{- fail (printf "natsClient.auth.mode must be none, creds, userPassword or token, not %q" $auth.mode) -}}
{{- end -}}
{{- if and (ne $auth.mode "none") (not $auth.existingSecret) -}}
{{- fail (printf "natsClient.auth.mode %s needs natsClient.auth.existingSecret (a Secret created beforehand)" $auth.mode) -}}
{{- end -}}
{{- if and .Values.natsClient.tls.enabled (not .Values.natsClient.tls.existingSecret) -}}
{{- fail "natsClient.tls.enabled needs natsClient.tls.existingSecret (a Secret with the CA certificate)" -}}
{{- end -}}
{{- if and .Values.nats.enabled (not .Values.nats.config.jetstream.enabled) -}}
{{- fail "nats.config.jetstream.enabled must stay true: the services keep plate events and configuration in JetStream" -}}
{{- end -}}
{{- /* Whole numbers in a range, as the services accept them: (list name value minimum maximum). */ -}}
{{- range $entry := list
  (list "ingest.replicas" .Values.ingest.replicas 0 1000000)
  (list "ingest.leaseTtlMs" .Values.ingest.leaseTtlMs 1000 600000)
  (list "ingest.maxCameras" .Values.ingest.maxCameras 0 1000000)
  (list "analytic.replicas" .Values.analytic.replicas 0 1000000)
  (list "analytic.leaseTtlMs" .Values.analytic.leaseTtlMs 1000 600000)
  (list "natsClient.streamReplicas" .Values.natsClient.streamReplicas 1 5) -}}
{{- $value := index $entry 1 -}}
{{- $number := or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) -}}
{{- if or (not $number) (ne (float64 $value) (float64 (int64 $value))) (lt (int64 $value) (int64 (index $entry 2))) (gt (int64 $value) (int64 (index $entry 3))) -}}
{{- fail (printf "%s must be a whole number from %d to %d, not %v" (index $entry 0) (index $entry 2) (index $entry 3) $value) -}}
{{- end -}}
{{- end -}}
{{- $streamReplicas := int64 .Values.natsClient.streamReplicas -}}
{{- if and .Values.nats.enabled (gt $streamReplicas 1) -}}
{{- $cluster := .Values.nats.config.cluster -}}
{{- $nodes := 1 -}}
{{- if $cluster.enabled -}}
{{- $nodes = int64 $cluster.replicas -}}
{{- end -}}
{{- if gt $streamReplicas $nodes -}}
{{- fail (printf "natsClient.streamReplicas %d needs as many NATS servers, the bundled NATS has %d (nats.config.cluster.enabled, nats.config.cluster.replicas)" $streamReplicas $nodes) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.recognizer.autoscaling.enabled (gt (int .Values.recognizer.autoscaling.minReplicas) (int .Values.recognizer.autoscaling.maxReplicas)) -}}
{{- fail "recognizer.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- end -}}

{{/* Environment of every service container: NATS, config service, logs, traces. */}}
{{- define "anpr.commonEnv" -}}
- name: NATS_URL
  value: {{ include "anpr.natsUrl" . | quote }}
- name: NATS_REPLICAS
  value: {{ .Values.natsClient.streamReplicas | quote }}
{{- with .Values.natsClient.auth }}
{{- if eq .mode "creds" }}
- name: NATS_CREDS
  value: {{ printf "/var/run/secrets/anpr/nats-auth/%s" .credsKey | quote }}
{{- else if eq .mode "userPassword" }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .userKey | quote }}
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .passwordKey | quote }}
{{- else if eq .mode "token" }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .tokenKey | quote }}
{{- end }}
{{- end }}
{{- with .Values.natsClient.tls }}
{{- if .enabled }}
- name: NATS_TLS_CA
  value: {{ printf "/var/run/secrets/anpr/nats-tls/%s" .caKey | quote }}
{{- if .clientCert }}
- name: NATS_TLS_CERT
  value: {{ printf "/var/run/secrets/anpr/nats-tls/%s" .certKey | quote }}
- name: NATS_TLS_KEY
  value: {{ printf "/var/run/secrets/anpr/nats-tls/%s" .keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}
- name: ANPR_HTTP_LISTEN
  value: "0.0.0.0:9090"
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
{{- with .Values.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volume mounts and volumes for NATS credentials and TLS, plus a writable /tmp. */}}
{{- define "anpr.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.natsClient.auth.mode "creds" }}
- name: nats-auth
  mountPath: /var/run/secrets/anpr/nats-auth
  readOnly: true
{{- end }}
{{- if .Values.natsClient.tls.enabled }}
- name: nats-tls
  mountPath: /var/run/secrets/anpr/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "anpr.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if eq .Values.natsClient.auth.mode "creds" }}
- name: nats-auth
  secret:
    secretName: {{ .Values.natsClient.auth.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ .Values.natsClient.auth.credsKey | quote }}
        path: {{ .Values.natsClient.auth.credsKey | quote }}
{{- end }}
{{- with .Values.natsClient.tls }}
{{- if .enabled }}
- name: nats-tls
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ .caKey | quote }}
        path: {{ .caKey | quote }}
      {{- if .clientCert }}
      - key: {{ .certKey | quote }}
        path: {{ .certKey | quote }}
      - key: {{ .keyKey | quote }}
        path: {{ .keyKey | quote }}
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod annotations: Prometheus scraping plus the component's own; takes (list $ componentValues). */}}
{{- define "anpr.podAnnotations" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
{{- if $root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: "9090"
prometheus.io/path: /metrics
{{- end }}
{{- with $values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Scheduling fields of a pod spec; takes the component's values. */}}
{{- define "anpr.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod-level fields shared by every workload. */}}
{{- define "anpr.podCommon" -}}
serviceAccountName: {{ include "anpr.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* HTTP probes on port 9090 (liveness /healthz, readiness /readyz, startup /healthz). */}}
{{- define "anpr.httpProbes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end -}}
